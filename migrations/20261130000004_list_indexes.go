package migrations

import (
	"context"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/migrate"
)

func registerListIndexes(ms *migrate.Migrations) {
	ms.MustRegister(tx(listIndexesUp), tx(listIndexesDown))
}

// Two single-column indexes become wider ones in their place, so that the
// paged lists read one index range and the hot inserts maintain no more
// indexes than before:
//
//   - room_members (user_id) → (user_id, joined_at, room_id): a user's rooms,
//     most recently joined first, page by page without sorting them all.
//   - message_keys (user_id) → (user_id, read_at, message_id): a user's
//     unread keys (read_at IS NULL) are one range of it, which is what the
//     conversations list counts; message_id makes the range cover the join
//     to messages.
//
// Both still serve every lookup by user_id alone (foreign-key actions,
// contacts), as the leading column.
func listIndexesUp(ctx context.Context, db bun.IDB) error {
	if err := dropIndexes(ctx, db, "room_members_user_idx", "message_keys_user_idx"); err != nil {
		return err
	}
	return createIndexes(ctx, db, []index{
		{table: "room_members", name: "room_members_user_joined_idx", columns: []string{"user_id", "joined_at", "room_id"}},
		{table: "message_keys", name: "message_keys_user_read_idx", columns: []string{"user_id", "read_at", "message_id"}},
	})
}

func listIndexesDown(ctx context.Context, db bun.IDB) error {
	if err := dropIndexes(ctx, db, "room_members_user_joined_idx", "message_keys_user_read_idx"); err != nil {
		return err
	}
	return createIndexes(ctx, db, []index{
		{table: "room_members", name: "room_members_user_idx", columns: []string{"user_id"}},
		{table: "message_keys", name: "message_keys_user_idx", columns: []string{"user_id"}},
	})
}
