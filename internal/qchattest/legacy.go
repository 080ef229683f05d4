package qchattest

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"golang.org/x/crypto/bcrypt"

	"github.com/qchat/qchat/db"
	"github.com/qchat/qchat/models"
	"github.com/qchat/qchat/pqcrypto"
)

// CreateLegacyUser writes an account as it was made before version 2 —
// no identity key, an uncertified ML-KEM-768 key — straight into the store:
// the API registers version 2 accounts only, but such accounts remain and
// must still sign in and read. The password is "password-"+name.
func CreateLegacyUser(t testing.TB, store *db.Store, name string) (*models.User, *pqcrypto.KeyPair) {
	t.Helper()
	kp, err := pqcrypto.GenerateKeyPair(pqcrypto.MLKEM768, nil)
	if err != nil {
		t.Fatal(err)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte("password-"+name), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	now := models.Now()
	u := &models.User{ID: uuid.NewString(), Username: name, PasswordHash: hash, CreatedAt: now}
	k := &models.PublicKey{ID: uuid.NewString(), Algorithm: models.KeyAlgorithmMlKem768, KeyBytes: kp.PublicKey,
		Fingerprint: pqcrypto.Fingerprint(kp.PublicKey), CreatedAt: now}
	if err := store.CreateUser(context.Background(), u, k); err != nil {
		t.Fatalf("create legacy user %s: %v", name, err)
	}
	return u, kp
}
