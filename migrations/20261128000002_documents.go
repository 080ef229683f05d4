package migrations

import (
	"context"
	"fmt"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/migrate"
)

func registerDocuments(ms *migrate.Migrations) { ms.MustRegister(tx(documentsUp), tx(documentsDown)) }

type document002 struct {
	bun.BaseModel `bun:"table:documents"`
	ID            string  `bun:"id,pk,type:varchar(36)"`
	Conversation  string  `bun:"conversation,notnull,type:varchar(80)"`
	RoomID        *string `bun:"room_id,type:varchar(36)"`
	UploaderID    string  `bun:"uploader_id,notnull,type:varchar(36)"`
	RecipientID   *string `bun:"recipient_id,type:varchar(36)"`
	Name          string  `bun:"name,notnull,type:varchar(255)"`
	MimeType      string  `bun:"mime_type,notnull,type:varchar(100)"`
	Size          int64   `bun:"size,notnull"`
	Nonce         []byte  `bun:"nonce,notnull"`
	CreatedAt     int64   `bun:"created_at,notnull"`
}

type documentKey002 struct {
	bun.BaseModel `bun:"table:document_keys"`
	DocumentID    string `bun:"document_id,pk,type:varchar(36)"`
	UserID        string `bun:"user_id,pk,type:varchar(36)"`
	KeyID         string `bun:"key_id,notnull,type:varchar(36)"`
	KEMCiphertext []byte `bun:"kem_ciphertext,notnull"`
	WrappedKey    []byte `bun:"wrapped_key,notnull"`
}

// Blobs live in their own table so that listing documents never reads them.
type documentBlob002 struct {
	bun.BaseModel `bun:"table:document_blobs"`
	ID            string `bun:"id,pk,type:varchar(36)"`
	Data          []byte `bun:"data,notnull"`
}

func documentsUp(ctx context.Context, db bun.IDB) error {
	if err := createTables(ctx, db, []table{
		{(*document002)(nil), []string{
			`("room_id") REFERENCES "rooms" ("id") ON DELETE CASCADE`,
			`("uploader_id") REFERENCES "users" ("id") ON DELETE CASCADE`,
			`("recipient_id") REFERENCES "users" ("id") ON DELETE CASCADE`,
		}},
		{(*documentKey002)(nil), []string{
			`("document_id") REFERENCES "documents" ("id") ON DELETE CASCADE`,
			`("user_id") REFERENCES "users" ("id") ON DELETE CASCADE`,
		}},
		// The blob goes when its document goes (a room deletion cascades here).
		{(*documentBlob002)(nil), []string{`("id") REFERENCES "documents" ("id") ON DELETE CASCADE`}},
	}); err != nil {
		return err
	}
	return createIndexes(ctx, db, []index{
		{table: "documents", name: "documents_conversation_idx", columns: []string{"conversation", "created_at DESC", "id DESC"}},
		{table: "documents", name: "documents_room_idx", columns: []string{"room_id"}},
		{table: "messages", name: "messages_attachment_idx", columns: []string{"attachment_id"}},
	})
}

func documentsDown(ctx context.Context, db bun.IDB) error {
	if err := dropIndexes(ctx, db, "messages_attachment_idx"); err != nil {
		return err
	}
	for _, t := range []string{"document_blobs", "document_keys", "documents"} {
		if _, err := db.NewDropTable().Table(t).IfExists().Exec(ctx); err != nil {
			return fmt.Errorf("drop table %s: %w", t, err)
		}
	}
	return nil
}
