package server_test

import (
	"testing"

	"github.com/qchat/qchat/db"
	"github.com/qchat/qchat/internal/qchattest"
	"github.com/qchat/qchat/pqcrypto"
)

// keyChanged reaches everyone who shares a room or a direct conversation
// with the user whose keys changed, once per action, and nobody else.
func TestKeyChangedReachesContactsOnly(t *testing.T) {
	qchattest.ForEachDatabase(t, func(t *testing.T, store *db.Store) {
		srv := qchattest.NewServer(t, store)
		alice, bob, dan, penny, eve, _ := contacts(t, srv)
		// dan shares a room with alice as well as their direct
		// conversation: still one event per change.
		createRoom(t, srv, alice, "second", dan)

		const q = `subscription { keyChanged { user { id username } kind } }`
		watchers := []*qchattest.User{bob, dan, penny, eve}
		subs := map[string]*qchattest.Sub{}
		for _, u := range watchers {
			subs[u.Name] = srv.Connect(t, qchattest.TransportWS, u.Token).Subscribe(q, nil)
		}
		srv.WaitSubscribers(t, len(watchers))

		// next asserts that the next key change u hears is want of alice:
		// events of one topic arrive in the order they were published, so
		// an event that was not next (a duplicate, or one meant for
		// someone else) fails here.
		next := func(t *testing.T, u *qchattest.User, want string) {
			t.Helper()
			var ev struct {
				KeyChanged struct {
					User struct{ ID, Username string }
					Kind string
				}
			}
			subs[u.Name].Next(t, &ev)
			if ev.KeyChanged.User.ID != alice.ID || ev.KeyChanged.User.Username != "alice" || ev.KeyChanged.Kind != want {
				t.Fatalf("%s heard %+v, want %s of alice", u.Name, ev.KeyChanged, want)
			}
		}
		contactsOfAlice := []*qchattest.User{bob, dan, penny}
		rotate := func(t *testing.T) {
			t.Helper()
			kp, err := pqcrypto.GenerateKeyPair(pqcrypto.MLKEM768, nil)
			if err != nil {
				t.Fatal(err)
			}
			srv.MustDo(t, alice.Token, `mutation($k: String!, $seq: Int!, $sig: String!) { rotateKey(publicKey: $k, seq: $seq, signature: $sig) { id } }`, alice.RotateVars(t, kp), nil)
		}

		rotate(t)
		for _, u := range contactsOfAlice {
			next(t, u, "KEM_ROTATED")
		}

		// Two replacements of alice's identity key (with the password); her
		// rotation above made seq 2.
		k := qchattest.NewV2Keys(t)
		srv.MustDo(t, alice.Token, setIdentityMut, map[string]any{"ik": k.Identity(), "pk": k.Pub(), "seq": 3, "sig": k.Cert(t, 3), "pw": alice.Password}, nil)
		for _, u := range contactsOfAlice {
			next(t, u, "IDENTITY_CHANGED")
		}
		n := qchattest.NewV2Keys(t)
		srv.MustDo(t, alice.Token, setIdentityMut, map[string]any{"ik": n.Identity(), "pk": n.Pub(), "seq": 4, "sig": n.Cert(t, 4), "pw": alice.Password}, nil)
		for _, u := range contactsOfAlice {
			next(t, u, "IDENTITY_CHANGED")
		}
		// A refused replacement changes nothing and tells nobody.
		if r := srv.Do(t, alice.Token, setIdentityMut, map[string]any{"ik": k.Identity(), "pk": k.Pub(), "seq": 5, "sig": k.Cert(t, 5), "pw": "wrong"}); r.Code() != "BAD_USER_INPUT" {
			t.Fatalf("wrong password answered %s %+v", r.Data, r.Errors)
		}

		// eve heard nothing of the above: once she shares a room with
		// alice, the first key change she hears is the one after that.
		// Alice's contacts hear it too, as their next event: nothing came
		// before it.
		createRoom(t, srv, alice, "third", eve)
		n.KP, _ = pqcrypto.GenerateKeyPair(pqcrypto.MLKEM768, nil)
		srv.MustDo(t, alice.Token, rotateCertMut, map[string]any{"pk": n.Pub(), "seq": 5, "sig": n.Cert(t, 5)}, nil)
		for _, u := range append(contactsOfAlice, eve) {
			next(t, u, "KEM_ROTATED")
		}
	})
}
