package db

import (
	"bytes"
	"context"
	"io"

	"github.com/uptrace/bun"

	"github.com/qchat/qchat/models"
)

// InsertDocument stores a document's metadata and recipient keys in one
// transaction (its ciphertext goes to blob storage first).
func (s *Store) InsertDocument(ctx context.Context, d *models.Document, keys []*models.DocumentKey) error {
	return s.tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.NewInsert().Model(d).Exec(ctx); err != nil {
			return translate(err, "document")
		}
		if len(keys) > 0 {
			if _, err := tx.NewInsert().Model(&keys).Exec(ctx); err != nil {
				return translate(err, "document keys")
			}
		}
		return nil
	})
}

// DocumentByID finds a document.
func (s *Store) DocumentByID(ctx context.Context, id string) (*models.Document, error) {
	d := new(models.Document)
	if err := s.r.NewSelect().Model(d).Where("id = ?", id).Scan(ctx); err != nil {
		return nil, translate(err, "document")
	}
	return d, nil
}

// DocumentsByIDs returns the documents that exist among ids.
func (s *Store) DocumentsByIDs(ctx context.Context, ids []string) ([]*models.Document, error) {
	var ds []*models.Document
	if len(ids) == 0 {
		return ds, nil
	}
	if err := s.r.NewSelect().Model(&ds).Where("id IN (?)", bun.List(ids)).Scan(ctx); err != nil {
		return nil, translate(err, "documents")
	}
	return ds, nil
}

// DocumentKeys returns the keys for the given (document, user) pairs.
func (s *Store) DocumentKeys(ctx context.Context, pairs []MessageUser) ([]*models.DocumentKey, error) {
	var ks []*models.DocumentKey
	if len(pairs) == 0 {
		return ks, nil
	}
	ids, users := splitPairs(pairs)
	err := s.r.NewSelect().Model(&ks).Where("document_id IN (?) AND user_id IN (?)", bun.List(ids), bun.List(users)).Scan(ctx)
	if err != nil {
		return nil, translate(err, "document keys")
	}
	return ks, nil
}

// DeleteDocument removes a document and its keys. The messages that carried
// it keep its id: it is part of what their senders signed (envelope v2), and
// Message.attachment simply finds nothing any more.
func (s *Store) DeleteDocument(ctx context.Context, id string) error {
	return s.tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		res, err := tx.NewDelete().Model((*models.Document)(nil)).Where("id = ?", id).Exec(ctx)
		if err != nil {
			return translate(err, "document")
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return models.NotFound("document")
		}
		return nil
	})
}

// Blobs stores document ciphertexts in the database, so that every instance
// behind a load balancer sees them. It implements the resolvers' BlobStore.
type Blobs struct{ s *Store }

// Blobs returns the database blob store.
func (s *Store) Blobs() *Blobs { return &Blobs{s} }

type blob struct {
	bun.BaseModel `bun:"table:document_blobs"`
	ID            string `bun:"id,pk"`
	Data          []byte `bun:"data,notnull"`
}

// Put stores data under id.
func (b *Blobs) Put(ctx context.Context, id string, data []byte) error {
	_, err := b.s.w.NewInsert().Model(&blob{ID: id, Data: data}).Exec(ctx)
	return translate(err, "document blob")
}

// Get returns the data of id.
func (b *Blobs) Get(ctx context.Context, id string) (io.ReadCloser, int64, error) {
	var bl blob
	if err := b.s.r.NewSelect().Model(&bl).Where("id = ?", id).Scan(ctx); err != nil {
		return nil, 0, translate(err, "document blob")
	}
	return io.NopCloser(bytes.NewReader(bl.Data)), int64(len(bl.Data)), nil
}

// Delete removes id; a missing blob is not an error.
func (b *Blobs) Delete(ctx context.Context, id string) error {
	_, err := b.s.w.NewDelete().Model((*blob)(nil)).Where("id = ?", id).Exec(ctx)
	return translate(err, "document blob")
}
