package migrations

import (
	"context"
	"fmt"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
	"github.com/uptrace/bun/migrate"
)

func registerIdentityKeys(ms *migrate.Migrations) {
	ms.MustRegister(tx(identityKeysUp), tx(identityKeysDown))
}

// identityKey005 is one of a user's ML-DSA-65 identity keys (envelope v2).
// Replaced keys are kept (current false) so that a key change can be shown
// and old signatures still name the key that made them.
type identityKey005 struct {
	bun.BaseModel `bun:"table:identity_keys"`
	ID            string `bun:"id,pk,type:varchar(36)"`
	UserID        string `bun:"user_id,notnull,type:varchar(36)"`
	Key           []byte `bun:"key,notnull"`
	Fingerprint   string `bun:"fingerprint,notnull,type:varchar(64)"`
	Current       bool   `bun:"current,notnull"`
	CreatedAt     int64  `bun:"created_at,notnull"`
}

// keyBackup005 is a user's sealed key backup: opaque to the server, which
// only checks its shape and size.
type keyBackup005 struct {
	bun.BaseModel `bun:"table:key_backups"`
	UserID        string `bun:"user_id,pk,type:varchar(36)"`
	Backup        string `bun:"backup,notnull,type:text"`
	UpdatedAt     int64  `bun:"updated_at,notnull"`
}

// column is a nullable (or defaulted) column added to an existing table.
// Every existing row is version 1 content: no signature, no key digests,
// which is exactly what the defaults say, so no row needs rewriting.
type column struct{ table, name, kind string }

func v2Columns(db bun.IDB) []column {
	blob := "BLOB"
	if db.Dialect().Name() == dialect.PG {
		blob = "BYTEA"
	}
	return []column{
		{"user_keys", "signature", blob}, // the KEM key's certificate
		{"user_keys", "seq", "INTEGER"},  // the certificate's sequence number
		{"messages", "version", "INTEGER NOT NULL DEFAULT 1"},
		{"messages", "signature", blob},
		{"messages", "key_digests", blob}, // the signed leaves, KeyDigestSize bytes each, in order
		{"documents", "version", "INTEGER NOT NULL DEFAULT 1"},
		{"documents", "signature", blob},
		{"documents", "key_digests", blob},
	}
}

func identityKeysUp(ctx context.Context, db bun.IDB) error {
	if err := createTables(ctx, db, []table{
		{(*identityKey005)(nil), []string{`("user_id") REFERENCES "users" ("id") ON DELETE CASCADE`}},
		{(*keyBackup005)(nil), []string{`("user_id") REFERENCES "users" ("id") ON DELETE CASCADE`}},
	}); err != nil {
		return err
	}
	for _, c := range v2Columns(db) {
		if _, err := db.NewAddColumn().Table(c.table).ColumnExpr(c.name + " " + c.kind).Exec(ctx); err != nil {
			return fmt.Errorf("add column %s.%s: %w", c.table, c.name, err)
		}
	}
	return createIndexes(ctx, db, []index{
		// At most one current identity key per user; the history lies outside it.
		{table: "identity_keys", name: "identity_keys_current_idx", unique: true, columns: []string{"user_id"}, where: `"current"`},
		{table: "identity_keys", name: "identity_keys_user_idx", columns: []string{"user_id", "created_at"}},
	})
}

func identityKeysDown(ctx context.Context, db bun.IDB) error {
	cols := v2Columns(db)
	for i := len(cols) - 1; i >= 0; i-- {
		c := cols[i]
		if _, err := db.NewDropColumn().Table(c.table).Column(c.name).Exec(ctx); err != nil {
			return fmt.Errorf("drop column %s.%s: %w", c.table, c.name, err)
		}
	}
	for _, t := range []string{"key_backups", "identity_keys"} {
		if _, err := db.NewDropTable().Table(t).IfExists().Exec(ctx); err != nil {
			return fmt.Errorf("drop table %s: %w", t, err)
		}
	}
	return nil
}
