// Package migrations holds QChat's schema changes as Go migrations written with
// bun's query builder, so that one set runs on SQLite and on PostgreSQL.
//
// Each migration declares its own table structs: they are a snapshot of the schema
// at that step and must never follow later changes to the models package.
package migrations

import (
	"context"
	"fmt"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/migrate"
)

// New returns every migration in order.
func New() *migrate.Migrations {
	ms := migrate.NewMigrations()
	// bun names a Go migration after the file that registers it, so each
	// migration file has its own register function.
	registerInitial(ms)
	registerDocuments(ms)
	registerPartialIndexes(ms)
	registerListIndexes(ms)
	registerIdentityKeys(ms)
	registerDirectPartners(ms)
	return ms
}

// tx runs a migration in one transaction: both dialects have transactional DDL,
// so a failed step leaves nothing half-applied.
func tx(fn func(ctx context.Context, db bun.IDB) error) migrate.MigrationFunc {
	return func(ctx context.Context, db *bun.DB) error {
		return db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			return fn(ctx, tx)
		})
	}
}

// table is a migration-local model with its foreign keys.
type table struct {
	model any
	fks   []string
}

func createTables(ctx context.Context, db bun.IDB, tables []table) error {
	for _, t := range tables {
		q := db.NewCreateTable().Model(t.model)
		for _, fk := range t.fks {
			q = q.ForeignKey(fk)
		}
		if _, err := q.Exec(ctx); err != nil {
			return fmt.Errorf("create table: %w", err)
		}
	}
	return nil
}

type index struct {
	table, name string
	unique      bool
	columns     []string
	where       string // a partial index: only rows matching this
}

func dropIndexes(ctx context.Context, db bun.IDB, names ...string) error {
	for _, n := range names {
		if _, err := db.NewDropIndex().Index(n).IfExists().Exec(ctx); err != nil {
			return fmt.Errorf("drop index %s: %w", n, err)
		}
	}
	return nil
}

func createIndexes(ctx context.Context, db bun.IDB, idx []index) error {
	for _, ix := range idx {
		q := db.NewCreateIndex().Table(ix.table).Index(ix.name).IfNotExists()
		if ix.unique {
			q = q.Unique()
		}
		for _, c := range ix.columns {
			q = q.ColumnExpr(c)
		}
		if ix.where != "" {
			q = q.Where(ix.where)
		}
		if _, err := q.Exec(ctx); err != nil {
			return fmt.Errorf("create index %s: %w", ix.name, err)
		}
	}
	return nil
}
