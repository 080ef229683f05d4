package migrations

import (
	"context"
	"fmt"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
	"github.com/uptrace/bun/migrate"
)

func registerDirectPartners(ms *migrate.Migrations) {
	ms.MustRegister(tx(directPartnersUp), tx(directPartnersDown))
}

// directPartner006 is one pair of users who exchanged a direct message,
// written once, by the first message either way: UserA sorts before UserB in
// byte order, as in a direct conversation's key.
//
// It replaces the partial messages_recipient_idx and messages_sender_idx,
// which every direct message had to update (25–30 µs of a message's CPU on
// SQLite) only so that the contacts and the conversations list could find a
// user's partners. The primary key serves the lookups by user_a (and the
// user-deletion cascade on it), direct_partners_b_idx those by user_b.
type directPartner006 struct {
	bun.BaseModel `bun:"table:direct_partners"`
	UserA         string `bun:"user_a,pk,type:varchar(36)"`
	UserB         string `bun:"user_b,pk,type:varchar(36)"`
}

func directPartnersUp(ctx context.Context, db bun.IDB) error {
	if err := createTables(ctx, db, []table{
		{(*directPartner006)(nil), []string{
			`("user_a") REFERENCES "users" ("id") ON DELETE CASCADE`,
			`("user_b") REFERENCES "users" ("id") ON DELETE CASCADE`,
		}},
	}); err != nil {
		return err
	}
	if err := createIndexes(ctx, db, []index{
		{table: "direct_partners", name: "direct_partners_b_idx", columns: []string{"user_b", "user_a"}},
	}); err != nil {
		return err
	}
	// Every pair that already exchanged a message, ordered in bytes on
	// PostgreSQL too (its default collation may order ids otherwise).
	collate := ""
	if db.Dialect().Name() == dialect.PG {
		collate = ` COLLATE "C"`
	}
	if _, err := db.NewRaw(`INSERT INTO direct_partners (user_a, user_b)
SELECT DISTINCT
  CASE WHEN sender_id` + collate + ` < recipient_id` + collate + ` THEN sender_id ELSE recipient_id END,
  CASE WHEN sender_id` + collate + ` < recipient_id` + collate + ` THEN recipient_id ELSE sender_id END
  FROM messages WHERE recipient_id IS NOT NULL`).Exec(ctx); err != nil {
		return fmt.Errorf("fill direct_partners: %w", err)
	}
	return dropIndexes(ctx, db, "messages_recipient_idx", "messages_sender_idx")
}

func directPartnersDown(ctx context.Context, db bun.IDB) error {
	if err := createIndexes(ctx, db, []index{
		{table: "messages", name: "messages_recipient_idx", columns: []string{"recipient_id", "sender_id"}, where: "recipient_id IS NOT NULL"},
		{table: "messages", name: "messages_sender_idx", columns: []string{"sender_id", "recipient_id"}, where: "recipient_id IS NOT NULL"},
	}); err != nil {
		return err
	}
	if _, err := db.NewDropTable().Table("direct_partners").IfExists().Exec(ctx); err != nil {
		return fmt.Errorf("drop table direct_partners: %w", err)
	}
	return nil
}
