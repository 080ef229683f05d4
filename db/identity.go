package db

import (
	"context"
	"errors"

	"github.com/uptrace/bun"

	"github.com/qchat/qchat/models"
)

// CurrentIdentityKey is the user's current identity key; ErrNotFound if the
// user has none (an account made before version 2).
func (s *Store) CurrentIdentityKey(ctx context.Context, userID string) (*models.IdentityKey, error) {
	ik := new(models.IdentityKey)
	err := s.r.NewSelect().Model(ik).Where(`user_id = ? AND "current" = ?`, userID, true).Scan(ctx)
	if err != nil {
		return nil, translate(err, "identity key")
	}
	return ik, nil
}

// CurrentIdentityKeys returns the current identity keys of those among
// userIDs that have one.
func (s *Store) CurrentIdentityKeys(ctx context.Context, userIDs []string) ([]*models.IdentityKey, error) {
	var iks []*models.IdentityKey
	if len(userIDs) == 0 {
		return iks, nil
	}
	if err := s.r.NewSelect().Model(&iks).Where(`user_id IN (?) AND "current" = ?`, bun.List(userIDs), true).Scan(ctx); err != nil {
		return nil, translate(err, "identity keys")
	}
	return iks, nil
}

// SetIdentityKey makes ik the user's current identity key (keeping the one it
// replaces, if any, as history) and k, which ik certifies, the user's current
// KEM key: one transaction, so a key never stands without its certifier.
func (s *Store) SetIdentityKey(ctx context.Context, userID string, ik *models.IdentityKey, k *models.PublicKey) error {
	ik.UserID = userID
	ik.Current = true
	return s.tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.NewUpdate().Model((*models.IdentityKey)(nil)).Set(`"current" = ?`, false).
			Where(`user_id = ? AND "current" = ?`, userID, true).Exec(ctx); err != nil {
			return translate(err, "identity key")
		}
		if _, err := tx.NewInsert().Model(ik).Exec(ctx); err != nil {
			return translate(err, "identity key")
		}
		return rotateKey(ctx, tx, userID, k)
	})
}

// PutKeyBackup stores the user's sealed backup, replacing any earlier one.
func (s *Store) PutKeyBackup(ctx context.Context, b *models.KeyBackup) error {
	_, err := s.w.NewInsert().Model(b).
		On("CONFLICT (user_id) DO UPDATE").
		Set("backup = EXCLUDED.backup").
		Set("updated_at = EXCLUDED.updated_at").
		Exec(ctx)
	return translate(err, "key backup")
}

// KeyBackup is the user's sealed backup; ErrNotFound if there is none.
func (s *Store) KeyBackup(ctx context.Context, userID string) (*models.KeyBackup, error) {
	b := new(models.KeyBackup)
	if err := s.r.NewSelect().Model(b).Where("user_id = ?", userID).Scan(ctx); err != nil {
		return nil, translate(err, "key backup")
	}
	return b, nil
}

// DeleteKeyBackup removes the user's backup and says whether there was one.
func (s *Store) DeleteKeyBackup(ctx context.Context, userID string) (bool, error) {
	res, err := s.w.NewDelete().Model((*models.KeyBackup)(nil)).Where("user_id = ?", userID).Exec(ctx)
	if err != nil {
		return false, translate(err, "key backup")
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, errors.Join(errors.New("delete key backup: rows affected"), err)
	}
	return n > 0, nil
}
