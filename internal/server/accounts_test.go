package server_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/qchat/qchat/db"
	"github.com/qchat/qchat/internal/qchattest"
	"github.com/qchat/qchat/pqcrypto"
)

const registerMutation = `mutation($in: RegisterInput!) { register(input: $in) { token expiresAt user { id username publicKey { id algorithm fingerprint } } } }`

// registerVars is a register input for key (base64) of alg ("" for the
// default) with a fresh identity key certifying it. A key that is not one
// gets a well-formed certificate of another key: the key's own check answers.
func registerVars(username, password, key, alg string) map[string]any {
	in := map[string]any{"username": username, "password": password, "publicKey": key}
	a := pqcrypto.MLKEM768
	if alg != "" {
		in["keyAlgorithm"] = alg
		a = pqcrypto.Algorithm(alg)
	}
	ik, err := pqcrypto.GenerateIdentityKey(nil)
	if err != nil {
		panic(err)
	}
	raw, _ := pqcrypto.DecodeB64(key)
	cert, err := pqcrypto.CertifyKEMKey(ik, a, 1, raw)
	if err != nil {
		other, _ := pqcrypto.GenerateKeyPair(pqcrypto.MLKEM768, nil)
		cert, _ = pqcrypto.CertifyKEMKey(ik, pqcrypto.MLKEM768, 1, other.PublicKey)
	}
	in["identityKey"], in["publicKeySignature"] = pqcrypto.EncodeB64(ik.PublicKey()), pqcrypto.EncodeB64(cert)
	return map[string]any{"in": in}
}

func TestAccounts(t *testing.T) {
	qchattest.ForEachDatabase(t, func(t *testing.T, store *db.Store) {
		srv := qchattest.NewServer(t, store)
		mlkem, _ := pqcrypto.GenerateKeyPair(pqcrypto.MLKEM768, nil)
		xwing, _ := pqcrypto.GenerateKeyPair(pqcrypto.XWing, nil)
		goodKey := pqcrypto.EncodeB64(mlkem.PublicKey)

		t.Run("register and me", func(t *testing.T) {
			var out struct {
				Register struct {
					Token, ExpiresAt string
					User             struct {
						ID, Username string
						PublicKey    struct{ ID, Algorithm, Fingerprint string }
					}
				}
			}
			srv.MustDo(t, "", registerMutation, registerVars("alice", "correct horse", goodKey, ""), &out)
			u := out.Register.User
			if out.Register.Token == "" || u.Username != "alice" || u.PublicKey.Algorithm != "ML_KEM_768" {
				t.Fatalf("register = %+v", out)
			}
			if u.PublicKey.Fingerprint != pqcrypto.Fingerprint(mlkem.PublicKey) {
				t.Fatalf("fingerprint %q", u.PublicKey.Fingerprint)
			}
			var me struct{ Me struct{ ID, Username string } }
			srv.MustDo(t, out.Register.Token, `{ me { id username } }`, nil, &me)
			if me.Me.ID != u.ID {
				t.Fatalf("me = %+v", me)
			}
		})

		t.Run("X-Wing key", func(t *testing.T) {
			var out struct {
				Register struct {
					User struct{ PublicKey struct{ Algorithm string } }
				}
			}
			srv.MustDo(t, "", registerMutation, registerVars("xavier", "password1", pqcrypto.EncodeB64(xwing.PublicKey), "X_WING"), &out)
			if out.Register.User.PublicKey.Algorithm != "X_WING" {
				t.Fatalf("algorithm = %q", out.Register.User.PublicKey.Algorithm)
			}
		})

		bad := []struct {
			name, username, password, key, alg, code string
		}{
			{"taken username", "alice", "password1", goodKey, "", "CONFLICT"},
			{"taken username other case", "ALICE", "password1", goodKey, "", "CONFLICT"},
			{"short username", "al", "password1", goodKey, "", "BAD_USER_INPUT"},
			{"long username", strings.Repeat("a", 33), "password1", goodKey, "", "BAD_USER_INPUT"},
			{"username with space", "al ice", "password1", goodKey, "", "BAD_USER_INPUT"},
			{"short password", "bob", "1234567", goodKey, "", "BAD_USER_INPUT"},
			{"long password", "bob", strings.Repeat("p", 73), goodKey, "", "BAD_USER_INPUT"},
			{"key not base64", "bob", "password1", "!!!", "", "BAD_USER_INPUT"},
			{"key wrong length", "bob", "password1", pqcrypto.EncodeB64(mlkem.PublicKey[:100]), "", "BAD_USER_INPUT"},
			{"ML-KEM key declared X-Wing", "bob", "password1", goodKey, "X_WING", "BAD_USER_INPUT"},
		}
		for _, tc := range bad {
			t.Run(tc.name, func(t *testing.T) {
				r := srv.Do(t, "", registerMutation, registerVars(tc.username, tc.password, tc.key, tc.alg))
				if r.Code() != tc.code {
					t.Fatalf("code = %q (%+v), want %s", r.Code(), r.Errors, tc.code)
				}
			})
		}

		t.Run("login", func(t *testing.T) {
			login := `mutation($u: String!, $p: String!) { login(username: $u, password: $p) { token user { username } } }`
			var ok struct{ Login struct{ Token string } }
			srv.MustDo(t, "", login, map[string]any{"u": "Alice", "p": "correct horse"}, &ok)
			if ok.Login.Token == "" {
				t.Fatal("no token")
			}
			wrong := srv.Do(t, "", login, map[string]any{"u": "alice", "p": "wrong password"})
			unknown := srv.Do(t, "", login, map[string]any{"u": "nobody", "p": "wrong password"})
			if wrong.Code() != "UNAUTHENTICATED" || unknown.Code() != "UNAUTHENTICATED" {
				t.Fatalf("codes %q %q", wrong.Code(), unknown.Code())
			}
			if wrong.Errors[0].Message != unknown.Errors[0].Message {
				t.Fatalf("login failure reveals whether the user exists: %q vs %q", wrong.Errors[0].Message, unknown.Errors[0].Message)
			}
		})

		t.Run("logout revokes the token", func(t *testing.T) {
			u := srv.Register(t, "carol")
			var out struct{ Logout bool }
			srv.MustDo(t, u.Token, `mutation { logout }`, nil, &out)
			if !out.Logout {
				t.Fatal("logout = false")
			}
			var me struct{ Me *struct{ ID string } }
			srv.MustDo(t, u.Token, `{ me { id } }`, nil, &me)
			if me.Me != nil {
				t.Fatal("revoked token still authenticates")
			}
			if r := srv.Do(t, u.Token, `{ myRooms { id } }`, nil); r.Code() != "UNAUTHENTICATED" {
				t.Fatalf("code = %q", r.Code())
			}
			if r := srv.Do(t, "", `mutation { logout }`, nil); r.Code() != "UNAUTHENTICATED" {
				t.Fatalf("anonymous logout code = %q", r.Code())
			}
		})

		t.Run("concurrent registrations of one name", func(t *testing.T) {
			const n = 8
			codes := make([]string, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					r := srv.Do(t, "", registerMutation, registerVars("racer", fmt.Sprintf("password%d", i), goodKey, ""))
					codes[i] = r.Code()
				}()
			}
			wg.Wait()
			wins := 0
			for _, c := range codes {
				switch c {
				case "":
					wins++
				case "CONFLICT":
				default:
					t.Errorf("unexpected code %q", c)
				}
			}
			if wins != 1 {
				t.Fatalf("%d registrations succeeded, want 1 (codes %v)", wins, codes)
			}
		})
	})
}

func TestKeys(t *testing.T) {
	qchattest.ForEachDatabase(t, func(t *testing.T, store *db.Store) {
		srv := qchattest.NewServer(t, store)
		alice := srv.Register(t, "alice")
		bob := srv.Register(t, "bob")
		next, _ := pqcrypto.GenerateKeyPair(pqcrypto.XWing, nil)
		var out struct {
			RotateKey struct {
				PublicKey struct{ ID, Algorithm string }
				Keys      []struct {
					ID      string
					Current bool
				}
			}
		}
		srv.MustDo(t, alice.Token, `mutation($k: String!, $seq: Int!, $sig: String!) { rotateKey(publicKey: $k, algorithm: X_WING, seq: $seq, signature: $sig) { publicKey { id algorithm } keys { id current } } }`,
			alice.RotateVars(t, next), &out)
		rk := out.RotateKey
		if rk.PublicKey.ID == alice.KeyID || rk.PublicKey.Algorithm != "X_WING" {
			t.Fatalf("rotated = %+v", rk)
		}
		if len(rk.Keys) != 2 || rk.Keys[0].ID != rk.PublicKey.ID || !rk.Keys[0].Current || rk.Keys[1].Current || rk.Keys[1].ID != alice.KeyID {
			t.Fatalf("keys = %+v", rk.Keys)
		}
		// Others see the new current key, and the old one still resolves by id.
		var seen struct {
			User      struct{ PublicKey struct{ ID string } }
			PublicKey struct {
				ID      string
				Current bool
			}
		}
		srv.MustDo(t, bob.Token, `query($u: ID!, $k: ID!) { user(id: $u) { publicKey { id } } publicKey(id: $k) { id current } }`,
			map[string]any{"u": alice.ID, "k": alice.KeyID}, &seen)
		if seen.User.PublicKey.ID != rk.PublicKey.ID || seen.PublicKey.ID != alice.KeyID || seen.PublicKey.Current {
			t.Fatalf("seen = %+v", seen)
		}
		var me struct {
			Me struct{ PublicKey struct{ ID string } }
		}
		srv.MustDo(t, alice.Token, `{ me { publicKey { id } } }`, nil, &me)
		if me.Me.PublicKey.ID != rk.PublicKey.ID {
			t.Fatalf("me sees stale key %s", me.Me.PublicKey.ID)
		}
		if r := srv.Do(t, alice.Token, `mutation($sig: String!) { rotateKey(publicKey: "AAAA", seq: 3, signature: $sig) { id } }`, map[string]any{"sig": alice.RotateVars(t, next)["sig"]}); r.Code() != "BAD_USER_INPUT" {
			t.Fatalf("bad key code = %q", r.Code())
		}
		// Lookups.
		var users struct {
			Users          []struct{ Username string }
			UserByUsername struct{ ID string }
		}
		srv.MustDo(t, bob.Token, `query($ids: [ID!]!) { users(ids: $ids) { username } userByUsername(username: "ALICE") { id } }`,
			map[string]any{"ids": []string{bob.ID, alice.ID, "00000000-0000-0000-0000-000000000000"}}, &users)
		if len(users.Users) != 2 || users.Users[0].Username != "bob" || users.UserByUsername.ID != alice.ID {
			t.Fatalf("users = %+v", users)
		}
		if r := srv.Do(t, "", `query($id: ID!) { user(id: $id) { id } }`, map[string]any{"id": alice.ID}); r.Code() != "UNAUTHENTICATED" {
			t.Fatalf("anonymous user() code = %q", r.Code())
		}
		if r := srv.Do(t, bob.Token, `{ user(id: "not-a-uuid") { id } }`, nil); r.Code() != "BAD_USER_INPUT" {
			t.Fatalf("bad id code = %q", r.Code())
		}
	})
}
