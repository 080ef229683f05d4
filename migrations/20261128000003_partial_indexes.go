package migrations

import (
	"context"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/migrate"
)

func registerPartialIndexes(ms *migrate.Migrations) {
	ms.MustRegister(tx(partialIndexesUp), tx(partialIndexesDown))
}

// Every message insert maintained five secondary indexes on messages, each
// one more b-tree page to change and (on SQLite) one more WAL frame to write
// per commit. Four of them serve only some rows: a room message has no
// recipient, a direct message no room, and most messages no attachment. As
// partial indexes they leave the other rows out: a direct message now
// maintains three indexes, a room message two. Lookups by room, recipient or
// attachment (foreign-key actions included) still use them, since
// "col = ?" implies "col IS NOT NULL" on both databases. The DM-partner
// lookups (Contacts) only ever ask about rows with a recipient.
var messageIndexes = []string{"messages_room_idx", "messages_recipient_idx", "messages_sender_idx", "messages_attachment_idx"}

func partialIndexesUp(ctx context.Context, db bun.IDB) error {
	if err := dropIndexes(ctx, db, messageIndexes...); err != nil {
		return err
	}
	return createIndexes(ctx, db, []index{
		{table: "messages", name: "messages_room_idx", columns: []string{"room_id"}, where: "room_id IS NOT NULL"},
		{table: "messages", name: "messages_recipient_idx", columns: []string{"recipient_id", "sender_id"}, where: "recipient_id IS NOT NULL"},
		{table: "messages", name: "messages_sender_idx", columns: []string{"sender_id", "recipient_id"}, where: "recipient_id IS NOT NULL"},
		{table: "messages", name: "messages_attachment_idx", columns: []string{"attachment_id"}, where: "attachment_id IS NOT NULL"},
	})
}

func partialIndexesDown(ctx context.Context, db bun.IDB) error {
	if err := dropIndexes(ctx, db, messageIndexes...); err != nil {
		return err
	}
	return createIndexes(ctx, db, []index{
		{table: "messages", name: "messages_room_idx", columns: []string{"room_id"}},
		{table: "messages", name: "messages_recipient_idx", columns: []string{"recipient_id", "sender_id"}},
		{table: "messages", name: "messages_sender_idx", columns: []string{"sender_id", "recipient_id"}},
		{table: "messages", name: "messages_attachment_idx", columns: []string{"attachment_id"}},
	})
}
