package server_test

import (
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/qchat/qchat/db"
	"github.com/qchat/qchat/internal/qchattest"
)

// Names that show other than they read, refused wherever a name is given.
var hiddenNames = []struct{ name, value string }{
	{"right-to-left override", "invoice\u202Efdp.exe"},
	{"left-to-right isolate", "a\u2066b"},
	{"zero-width space", "pay\u200Bpal"},
	{"zero-width joiner", "a\u200Db"},
	{"byte order mark", "a\uFEFFb"},
	{"soft hyphen", "a\u00ADb"},
	{"tag character", "a\U000E0041b"},
	{"bell", "a\u0007b"},
	{"escape", "a\u001B[31mb"},
	{"line separator", "a\u2028b"},
}

// wantFieldError asserts a BAD_USER_INPUT that names field.
func wantFieldError(t *testing.T, r *qchattest.Response, field string) {
	t.Helper()
	if r.Code() != "BAD_USER_INPUT" || !strings.HasPrefix(r.Errors[0].Message, field+":") || r.Errors[0].Extensions["field"] != field {
		t.Fatalf("answered %+v, want BAD_USER_INPUT naming %s", r.Errors, field)
	}
}

// Issue 14: room and document names accepted bidirectional overrides and
// zero-width characters.
func TestNamesRefuseHiddenCharacters(t *testing.T) {
	qchattest.ForEachDatabase(t, func(t *testing.T, store *db.Store) {
		srv := qchattest.NewServer(t, store)
		alice := srv.Register(t, "alice")
		room := createRoom(t, srv, alice, "files")
		for _, tc := range hiddenNames {
			t.Run(tc.name, func(t *testing.T) {
				wantFieldError(t, srv.Do(t, alice.Token, `mutation($n: String!) { createRoom(input: { name: $n }) { id } }`, map[string]any{"n": tc.value}), "name")
				wantFieldError(t, srv.Do(t, alice.Token, `mutation($r: ID!, $n: String!) { updateRoom(roomId: $r, name: $n) { id } }`, map[string]any{"r": room.ID, "n": tc.value}), "name")
				in, ct := qchattest.SealDocument(t, uuid.NewString(), alice, room.ID, "", "x.txt", "text/plain", []byte("hi"), alice)
				in["name"] = tc.value + ".txt"
				wantFieldError(t, srv.Upload(t, alice.Token, uploadMutation, in, ct), "name")
				r := srv.Do(t, "", registerMutation, registerVars("u"+tc.value, "password1", mustKey(t), ""))
				wantFieldError(t, r, "username")
			})
		}
		// What is visible stays welcome, right-to-left scripts and emoji included.
		for _, name := range []string{"Café ☕", "שלום", "مرحبا", "日本語", "Plans 🎉", "नमस्ते"} {
			var out struct{ CreateRoom struct{ Name string } }
			srv.MustDo(t, alice.Token, `mutation($n: String!) { createRoom(input: { name: $n }) { name } }`, map[string]any{"n": name}, &out)
			if out.CreateRoom.Name != name {
				t.Fatalf("room name %q stored as %q", name, out.CreateRoom.Name)
			}
		}
	})
}

// Usernames are ASCII (3 to 32 of A-Z a-z 0-9 _ . -), unique regardless of
// case, and NFKC-normalised first: a compatibility form of ASCII (fullwidth
// letters, ligatures, the Kelvin sign) names the account it looks like, at
// registration, login and userByUsername alike, and any other look-alike
// (Cyrillic, Greek) is refused. So no two accounts can look the same.
func TestUsernameLookAlikes(t *testing.T) {
	qchattest.ForEachDatabase(t, func(t *testing.T, store *db.Store) {
		srv := qchattest.NewServer(t, store)
		alice := srv.Register(t, "alice")
		register := func(name string) *qchattest.Response {
			return srv.Do(t, "", registerMutation, registerVars(name, "password1", mustKey(t), ""))
		}
		for _, tc := range []struct {
			name, username string
			code           string
		}{
			{"other case", "ALICE", "CONFLICT"},
			{"fullwidth", "ａｌｉｃｅ", "CONFLICT"},
			{"fullwidth capitals", "ＡＬＩＣＥ", "CONFLICT"},
			{"Cyrillic a", "\u0430lice", "BAD_USER_INPUT"},
			{"Greek omicron", "b\u03bfb", "BAD_USER_INPUT"},
			{"dotless i", "al\u0131ce", "BAD_USER_INPUT"},
			{"combining accent", "alice\u0301", "BAD_USER_INPUT"},
			{"too long once normalised", strings.Repeat("ａ", 33), "BAD_USER_INPUT"},
			{"oversized input", strings.Repeat("a", 1000), "BAD_USER_INPUT"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := register(tc.username)
				if r.Code() != tc.code {
					t.Fatalf("register %q answered %s %+v, want %s", tc.username, r.Data, r.Errors, tc.code)
				}
				if tc.code == "BAD_USER_INPUT" {
					wantFieldError(t, r, "username")
				}
			})
		}

		// A compatibility form registers as the ASCII it stands for, and
		// every way of writing it finds the one account.
		var reg struct {
			Register struct{ User struct{ ID, Username string } }
		}
		register("\uFB01ona\u00B2").Decode(t, &reg) // "ﬁona²"
		if reg.Register.User.Username != "fiona2" {
			t.Fatalf("registered as %q, want fiona2", reg.Register.User.Username)
		}
		for _, spelled := range []string{"fiona2", "FIONA2", "\uFB01ona\u00B2", "ｆｉｏｎａ２", "ＦＩＯＮＡ2"} {
			t.Run("finds fiona2 as "+spelled, func(t *testing.T) {
				var login struct {
					Login struct{ User struct{ ID string } }
				}
				srv.MustDo(t, "", `mutation($u: String!) { login(username: $u, password: "password1") { user { id } } }`, map[string]any{"u": spelled}, &login)
				var found struct{ UserByUsername *struct{ ID string } }
				srv.MustDo(t, alice.Token, `query($u: String!) { userByUsername(username: $u) { id } }`, map[string]any{"u": spelled}, &found)
				if login.Login.User.ID != reg.Register.User.ID || found.UserByUsername == nil || found.UserByUsername.ID != reg.Register.User.ID {
					t.Fatalf("login found %q, userByUsername %+v, want %s", login.Login.User.ID, found.UserByUsername, reg.Register.User.ID)
				}
			})
		}
		// A look-alike that is no username finds nobody, with the answer
		// an unknown user gets.
		for _, spelled := range []string{"\u0430lice", "ali\u200Bce", strings.Repeat("a", 1000)} {
			r := srv.Do(t, "", `mutation($u: String!) { login(username: $u, password: "password-alice") { token } }`, map[string]any{"u": spelled})
			if r.Code() != "UNAUTHENTICATED" || r.Errors[0].Message != "invalid username or password" {
				t.Fatalf("login as %q answered %+v", spelled, r.Errors)
			}
			var found struct{ UserByUsername *struct{ ID string } }
			srv.MustDo(t, alice.Token, `query($u: String!) { userByUsername(username: $u) { id } }`, map[string]any{"u": spelled}, &found)
			if found.UserByUsername != nil {
				t.Fatalf("userByUsername(%q) found %+v", spelled, found.UserByUsername)
			}
		}
	})
}
