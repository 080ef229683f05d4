package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/qchat/qchat/client"
	"github.com/qchat/qchat/internal/qchattest"
	"github.com/qchat/qchat/internal/qchattest/syncbuf"
	"github.com/qchat/qchat/internal/server"
)

// The tests in this file run the CLI in-process (run, as main calls it)
// against a real server on a loopback port: one config dir per person.

type cliUser struct {
	t    *testing.T
	name string
	env  map[string]string
}

// signedUpPair is a server with alice and bob, each signed up with the CLI
// in a config directory of their own.
func signedUpPair(t *testing.T) (context.Context, *qchattest.Server, *cliUser, *cliUser) {
	t.Helper()
	ctx := context.Background()
	srv := qchattest.NewServer(t, qchattest.NewSQLite(t))
	alice, bob := newCLIUser(t, srv.URL, "alice"), newCLIUser(t, srv.URL, "bob")
	alice.signUp(ctx)
	bob.signUp(ctx)
	return ctx, srv, alice, bob
}

func newCLIUser(t *testing.T, url, name string) *cliUser {
	return &cliUser{t: t, name: name, env: map[string]string{
		"QCHAT_CONFIG_DIR": t.TempDir(), "QCHAT_SERVER": url, "QCHAT_PASSWORD": "password of " + name,
	}}
}

func (u *cliUser) dir() string { return u.env["QCHAT_CONFIG_DIR"] }

// exec runs one command to completion.
func (u *cliUser) exec(ctx context.Context, args ...string) (stdout, stderr string, err error) {
	var out, errOut bytes.Buffer
	err = run(ctx, args, strings.NewReader(""), &out, &errOut, func(k string) string { return u.env[k] })
	return out.String(), errOut.String(), err
}

// do runs one command that must succeed and returns its stdout.
func (u *cliUser) do(ctx context.Context, args ...string) string {
	u.t.Helper()
	out, errOut, err := u.exec(ctx, args...)
	if err != nil {
		u.t.Fatalf("%s: qchat %s: %v\n%s%s", u.name, strings.Join(args, " "), err, out, errOut)
	}
	return out
}

func (u *cliUser) signUp(ctx context.Context) {
	u.t.Helper()
	u.do(ctx, "keygen")
	u.do(ctx, "register", u.name)
}

// bgListen is a "qchat listen" running in the background.
type bgListen struct {
	out, errOut syncbuf.Buffer
	cancel      context.CancelFunc
	done        chan error
}

func (u *cliUser) listen(ctx context.Context, args ...string) *bgListen {
	u.t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	l := &bgListen{cancel: cancel, done: make(chan error, 1)}
	go func() {
		l.done <- run(ctx, append([]string{"listen"}, args...), strings.NewReader(""), &l.out, &l.errOut, func(k string) string { return u.env[k] })
	}()
	u.t.Cleanup(func() { l.stop(u.t) })
	l.waitStderr(u.t, "listening as")
	return l
}

func (l *bgListen) stop(t *testing.T) {
	l.cancel()
	select {
	case err, ok := <-l.done:
		if ok && err != nil {
			t.Errorf("listen ended with %v\n%s", err, l.errOut.String())
		}
		close(l.done)
	case <-time.After(30 * time.Second):
		t.Errorf("listen still running 30s after cancel")
	}
}

// waitFor waits, with a generous deadline, until cond holds for the
// output; it never depends on how fast the machine is.
func (l *bgListen) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("listen never showed %s; stdout:\n%s\nstderr:\n%s", what, l.out.String(), l.errOut.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (l *bgListen) waitStderr(t *testing.T, s string) {
	t.Helper()
	l.waitFor(t, "stderr "+s, func() bool { return strings.Contains(l.errOut.String(), s) })
}

// messages are the message events shown so far.
func (l *bgListen) messages() []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(l.out.String(), "\n") {
		var ev map[string]any
		if json.Unmarshal([]byte(line), &ev) == nil && ev["event"] == "message" {
			out = append(out, ev)
		}
	}
	return out
}

func (l *bgListen) waitText(t *testing.T, text string) map[string]any {
	t.Helper()
	var found map[string]any
	l.waitFor(t, "message "+text, func() bool {
		for _, m := range l.messages() {
			if m["text"] == text {
				found = m
				return true
			}
		}
		return false
	})
	return found
}

// frontDoor is a stable address in front of a server that can be
// replaced, like a server restarting on its port; while gated, it refuses
// websockets (plain requests still pass), so that a listener stays
// disconnected while others send.
type frontDoor struct {
	*httptest.Server
	next  atomic.Pointer[http.Handler]
	gated atomic.Bool
}

func newFrontDoor(t *testing.T, h http.Handler) *frontDoor {
	f := &frontDoor{}
	f.next.Store(&h)
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f.gated.Load() && strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			http.Error(w, "restarting", http.StatusServiceUnavailable)
			return
		}
		(*f.next.Load()).ServeHTTP(w, r)
	}))
	t.Cleanup(f.Server.Close)
	return f
}

func (f *frontDoor) route(h http.Handler) { f.next.Store(&h) }

// TestListenSurvivesRestartAndRotation is items 6 and 7 of the newcomer
// issue: a running listen opens messages sealed for a key rotated in
// another terminal, and when the server restarts it says so in one line,
// reconnects, and shows what was sent meanwhile once, in order.
func TestListenSurvivesRestartAndRotation(t *testing.T) {
	// Registered first, so it runs after every other cleanup: the servers
	// and the listener must leave no goroutine behind.
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() {
		http.DefaultClient.CloseIdleConnections()
		goleak.VerifyNone(t, ignore)
	})
	ctx := context.Background()
	store := qchattest.NewSQLite(t)
	first := qchattest.NewServer(t, store)
	front := newFrontDoor(t, first.HTTP.Config.Handler)

	alice, bob, carol := newCLIUser(t, front.URL, "alice"), newCLIUser(t, front.URL, "bob"), newCLIUser(t, front.URL, "carol")
	alice.signUp(ctx)
	bob.signUp(ctx)
	carol.signUp(ctx)
	var room struct{ Code string }
	if err := json.Unmarshal([]byte(alice.do(ctx, "room", "create", "Plans", "--json")), &room); err != nil {
		t.Fatal(err)
	}
	bob.do(ctx, "room", "join", room.Code)

	live := bob.listen(ctx, "--json")
	first.WaitSubscribers(t, 6)
	alice.do(ctx, "send", "Plans", "before anything")
	alice.do(ctx, "send", "@bob", "a direct word")
	live.waitText(t, "before anything")
	live.waitText(t, "a direct word")

	// Item 6: bob rotates in another terminal; the running listen opens
	// what alice seals for the new key.
	bob.do(ctx, "rotate-key")
	alice.do(ctx, "send", "Plans", "after the rotation")
	if m := live.waitText(t, "after the rotation"); m["error"] != nil {
		t.Fatalf("after rotation: %v", m)
	}

	// Item 7: the server goes away; messages sent while listen is cut off
	// are shown once it is back, exactly once and in order.
	front.gated.Store(true)
	second := qchattest.NewServer(t, store)
	front.route(second.HTTP.Config.Handler)
	first.HTTP.Config.Handler.(*server.Server).BeginShutdown()
	live.waitStderr(t, "the server is restarting or shutting down: reconnecting…")
	// carol's first message to bob starts a conversation listen has
	// never seen: catching up still finds it.
	missed := []string{"sent while you were away 1", "sent while you were away 2", "hello from someone new"}
	alice.do(ctx, "send", "Plans", missed[0])
	alice.do(ctx, "send", "@bob", missed[1])
	carol.do(ctx, "send", "@bob", missed[2])
	front.gated.Store(false)
	live.waitStderr(t, "reconnected; 3 missed messages shown")
	second.WaitSubscribers(t, 6)
	alice.do(ctx, "send", "Plans", "live again")
	live.waitText(t, "live again")

	var texts []string
	for _, m := range live.messages() {
		if m["error"] != nil {
			t.Errorf("undecryptable: %v", m)
		}
		texts = append(texts, m["text"].(string))
	}
	want := []string{"before anything", "a direct word", "after the rotation", missed[0], missed[1], missed[2], "live again"}
	if strings.Join(texts, "|") != strings.Join(want, "|") {
		t.Errorf("listen showed %q, want %q", texts, want)
	}
	if n := strings.Count(live.errOut.String(), "reconnecting"); n != 1 {
		t.Errorf("%d reconnecting lines, want one:\n%s", n, live.errOut.String())
	}
}

// TestEveryCommandAnswersHelp is item 10: --help (and -h, and "help
// COMMAND") describes every command and subcommand and succeeds.
func TestEveryCommandAnswersHelp(t *testing.T) {
	lines := [][]string{{"--help"}, {"-h"}, {"help"}, {"room", "--help"}, {"help", "send"}, {"help", "room"}, {"backup", "--help"}, {"help", "backup"}}
	for name := range (&app{}).commands() {
		lines = append(lines, append(strings.Fields(name), "--help"))
	}
	getenv := env(map[string]string{"QCHAT_CONFIG_DIR": t.TempDir()})
	for _, args := range lines {
		var out, errOut bytes.Buffer
		if err := run(context.Background(), args, strings.NewReader(""), &out, &errOut, getenv); err != nil {
			t.Errorf("qchat %s: %v", strings.Join(args, " "), err)
		}
		if !strings.HasPrefix(out.String(), "Usage: ") && !strings.Contains(out.String(), "\nUsage: ") {
			t.Errorf("qchat %s printed no usage:\n%s", strings.Join(args, " "), out.String())
		}
	}
	for _, args := range [][]string{{"rooms", "--nope"}, {"--nope", "rooms"}, {"room"}, {"room", "frobnicate"}, {"send", "Plans"}, {"frobnicate"}} {
		var out bytes.Buffer
		if err := run(context.Background(), args, strings.NewReader(""), &out, &out, getenv); !errors.Is(err, errUsage) {
			t.Errorf("qchat %s: %v, want a usage error (exit 2)", strings.Join(args, " "), err)
		}
	}
	for _, args := range [][]string{{"version"}, {"--version"}} {
		var out bytes.Buffer
		if err := run(context.Background(), args, strings.NewReader(""), &out, &out, getenv); err != nil || out.String() != "qchat "+version+"\n" {
			t.Errorf("qchat %s: %q, %v", strings.Join(args, " "), out.String(), err)
		}
	}
}

// TestGlobalFlagsAnywhere is item 10: "qchat --server URL rooms" and the
// flag after the command mean the same, and --json works in either place.
func TestGlobalFlagsAnywhere(t *testing.T) {
	ctx := context.Background()
	srv := qchattest.NewServer(t, qchattest.NewSQLite(t))
	alice := newCLIUser(t, srv.URL, "alice")
	delete(alice.env, "QCHAT_SERVER")
	alice.do(ctx, "keygen")
	alice.do(ctx, "--server", srv.URL, "register", "alice")
	alice.do(ctx, "room", "create", "Plans")
	for _, args := range [][]string{
		{"--server", srv.URL, "rooms"}, {"rooms", "--server", srv.URL}, {"rooms"},
		{"--json", "rooms"}, {"rooms", "--json"}, {"room", "--json", "members", "Plans"}, {"--json", "room", "members", "Plans", "--server=" + srv.URL},
	} {
		out := alice.do(ctx, args...)
		if !strings.Contains(out, "Plans") && !strings.Contains(out, "alice") {
			t.Errorf("qchat %s:\n%s", strings.Join(args, " "), out)
		}
		if slices.Contains(args, "--json") && !json.Valid([]byte(strings.Split(out, "\n")[0])) {
			t.Errorf("qchat %s: not JSON:\n%s", strings.Join(args, " "), out)
		}
	}
}

// TestSendKeepsText is item 8 end to end: text that starts with a dash
// arrives as typed, "--" passes text that looks like a flag, and a flag
// after the text is a flag.
func TestSendKeepsText(t *testing.T) {
	ctx := context.Background()
	srv := qchattest.NewServer(t, qchattest.NewSQLite(t))
	alice := newCLIUser(t, srv.URL, "alice")
	alice.signUp(ctx)
	alice.do(ctx, "room", "create", "Plans")
	for _, tc := range []struct {
		args []string
		text string
		json bool
	}{
		{[]string{"send", "Plans", "-5 degrees outside"}, "-5 degrees outside", false},
		{[]string{"send", "Plans", "--", "--json", "is", "a", "flag"}, "--json is a flag", false},
		{[]string{"send", "Plans", "hello", "world", "--json"}, "hello world", true},
		{[]string{"send", "--json", "Plans", "-", "a", "list", "item"}, "- a list item", true},
	} {
		out := alice.do(ctx, tc.args...)
		if json.Valid([]byte(out)) != tc.json {
			t.Errorf("qchat %q printed %q; JSON wanted: %v", tc.args, out, tc.json)
		}
		hist := alice.do(ctx, "history", "Plans", "--limit", "1", "--json")
		var m struct{ Text string }
		if err := json.Unmarshal([]byte(hist), &m); err != nil || m.Text != tc.text {
			t.Errorf("qchat %q sent %q (%v), want %q", tc.args, m.Text, err, tc.text)
		}
	}
	if _, _, err := alice.exec(ctx, "send", "Plans", "-hello"); !errors.Is(err, errUsage) || !strings.Contains(err.Error(), "--") {
		t.Errorf("send -hello: %v, want a usage error that points to --", err)
	}
}

// TestProfiles is item 9: two people on one machine, told apart by
// --profile or QCHAT_PROFILE, without a config dir variable of their own.
func TestProfiles(t *testing.T) {
	ctx := context.Background()
	srv := qchattest.NewServer(t, qchattest.NewSQLite(t))
	base := t.TempDir()
	alice, bob := newCLIUser(t, srv.URL, "alice"), newCLIUser(t, srv.URL, "bob")
	alice.env["QCHAT_CONFIG_DIR"], bob.env["QCHAT_CONFIG_DIR"] = base, base
	bob.env["QCHAT_PROFILE"] = "bob"
	alice.do(ctx, "--profile", "alice", "keygen")
	alice.do(ctx, "register", "alice", "--profile", "alice")
	bob.do(ctx, "keygen")
	bob.do(ctx, "register", "bob")
	alice.do(ctx, "--profile", "alice", "send", "@bob", "hi bob")
	hist := bob.do(ctx, "history", "@alice", "--json")
	if !strings.Contains(hist, `"text":"hi bob"`) {
		t.Errorf("bob's history: %s", hist)
	}
	for _, p := range []string{"alice", "bob"} {
		if _, err := os.Stat(filepath.Join(base, "profiles", p, keysFile)); err != nil {
			t.Errorf("profile %s: %v", p, err)
		}
	}
	if _, err := os.Stat(filepath.Join(base, keysFile)); err == nil {
		t.Error("a profile wrote to the default config dir")
	}
	if _, _, err := alice.exec(ctx, "--profile", "../escape", "keygen"); !errors.Is(err, errUsage) {
		t.Errorf("profile ../escape: %v", err)
	}
}

// TestUploadChecksFirst is item 12: size and type are checked before any
// sealing or network (the session's server does not even exist), with the
// limit in MiB, the accepted types and a pointer to --type.
func TestUploadChecksFirst(t *testing.T) {
	ctx := context.Background()
	u := newCLIUser(t, "http://127.0.0.1:1", "alice")
	if err := writeJSON(u.dir(), sessionFile, &session{Server: "http://127.0.0.1:1", Token: "t", Username: "alice"}); err != nil {
		t.Fatal(err)
	}
	files := t.TempDir()
	mk := func(name string, size int64) string {
		p := filepath.Join(files, name)
		f, err := os.Create(p)
		if err == nil {
			err = f.Truncate(size)
		}
		if err == nil {
			err = f.Close()
		}
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"too big", []string{mk("big.pdf", 20<<20)}, []string{"big.pdf is 20.0 MiB; files can be at most 10 MiB"}},
		{"just over", []string{mk("edge.pdf", client.MaxFileSize+1)}, []string{"edge.pdf is 10.0 MiB; files can be at most 10 MiB"}},
		{"refused type", []string{mk("data.csv", 10)}, []string{"data.csv is text/csv", "accepts JPEG, PNG", "PDF", "plain text", "--type"}},
		{"unknown extension", []string{mk("blob.qzx", 10)}, []string{"cannot tell the type of blob.qzx", "--type"}},
		{"refused --type", []string{mk("notes.txt", 10), "--type", "text/csv"}, []string{"does not accept text/csv"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := u.exec(ctx, append([]string{"upload", "Plans"}, tc.args...)...)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	// A file that passes the checks does reach for the network.
	if _, _, err := u.exec(ctx, "upload", "Plans", mk("ok.txt", 64)); err == nil || !strings.Contains(err.Error(), "cannot reach the server") {
		t.Errorf("upload of a good file: %v", err)
	}
}

func TestHumanSize(t *testing.T) {
	for n, want := range map[int64]string{0: "0 bytes", 64: "64 bytes", 1023: "1023 bytes", 1024: "1.0 KiB", 1536: "1.5 KiB", 10 << 20: "10.0 MiB"} {
		if got := humanSize(n); got != want {
			t.Errorf("humanSize(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestFileSizesAreTheFilesOwn is item 11: upload, listen, history and
// download all give the file's own size, not the sealed size.
func TestFileSizesAreTheFilesOwn(t *testing.T) {
	ctx, srv, alice, bob := signedUpPair(t)
	path := filepath.Join(t.TempDir(), "notes.txt")
	if err := os.WriteFile(path, bytes.Repeat([]byte("x"), 64), 0o600); err != nil {
		t.Fatal(err)
	}
	live := bob.listen(ctx)
	srv.WaitSubscribers(t, 5)
	if out := alice.do(ctx, "upload", "@bob", path); !strings.Contains(out, "uploaded notes.txt (64 bytes) to @bob") {
		t.Errorf("upload said:\n%s", out)
	}
	live.waitFor(t, "the file", func() bool { return strings.Contains(live.out.String(), "[file notes.txt, 64 bytes: qchat download ") })
	if out := bob.do(ctx, "history", "@alice"); !strings.Contains(out, "[file notes.txt, 64 bytes: ") {
		t.Errorf("history said:\n%s", out)
	}
	hist := bob.do(ctx, "history", "@alice", "--json")
	var m struct {
		Attachment struct {
			ID   string
			Size int
		}
	}
	if err := json.Unmarshal([]byte(hist), &m); err != nil || m.Attachment.Size != 64 {
		t.Errorf("history --json: %s (%v)", hist, err)
	}
	cwd := t.TempDir()
	if out := bob.do(ctx, "download", m.Attachment.ID, "-o", filepath.Join(cwd, "n.txt")); !strings.Contains(out, "(64 bytes)") {
		t.Errorf("download said:\n%s", out)
	}
}

// TestKeysAreNotReplacedSilently is item 14: keygen --force cannot replace
// a registered key (rotate-key is the way), and logging in on a device
// without the keys says what helps, which then works: the key backup brings
// the whole history to a new device, and rotating on one device leaves the
// other a note and a way to catch up.
func TestKeysAreNotReplacedSilently(t *testing.T) {
	ctx, srv, alice, bob := signedUpPair(t)
	before, _ := os.ReadFile(filepath.Join(alice.dir(), keysFile))
	if _, _, err := alice.exec(ctx, "keygen", "--force"); err == nil || !strings.Contains(err.Error(), "rotate-key") {
		t.Errorf("keygen --force on a registered account: %v, want a refusal pointing to rotate-key", err)
	}
	if after, _ := os.ReadFile(filepath.Join(alice.dir(), keysFile)); !bytes.Equal(before, after) {
		t.Error("keygen --force changed the key store of a registered account")
	}
	bob.do(ctx, "send", "@alice", "before the new device")

	// Alice on a new laptop, before she has a backup: no keys there, and
	// login says what she can do.
	laptop := newCLIUser(t, srv.URL, "alice")
	_, note, err := laptop.exec(ctx, "login", "alice")
	if err != nil || !strings.Contains(note, "no key backup") || !strings.Contains(note, "backup restore") ||
		!strings.Contains(note, "reset-identity") || strings.Contains(note, "keygen") {
		t.Fatalf("login on a new device without a backup: %v, said:\n%s", err, note)
	}
	if _, _, err := laptop.exec(ctx, "history", "@bob"); err == nil || !strings.Contains(err.Error(), "backup restore") {
		t.Errorf("history without keys: %v", err)
	}
	if _, _, err := laptop.exec(ctx, "backup", "restore"); err == nil || !strings.Contains(err.Error(), "no key backup") {
		t.Errorf("restore without a backup: %v", err)
	}

	// A passphrase under 12 characters is refused; a good one backs up.
	alice.env["QCHAT_BACKUP_SECRET"] = "too short"
	if _, _, err := alice.exec(ctx, "backup", "create"); err == nil || !strings.Contains(err.Error(), "at least 12 characters") {
		t.Errorf("short backup passphrase: %v", err)
	}
	alice.env["QCHAT_BACKUP_SECRET"] = "a long backup passphrase of alice"
	alice.do(ctx, "backup", "create")
	_, note, err = laptop.exec(ctx, "login", "alice")
	if err != nil || !strings.Contains(note, "backup restore") || strings.Contains(note, "no key backup") {
		t.Fatalf("login on a new device with a backup: %v, said:\n%s", err, note)
	}
	laptop.env["QCHAT_BACKUP_SECRET"] = "not the passphrase of the backup"
	if _, _, err := laptop.exec(ctx, "backup", "restore"); err == nil || !strings.Contains(err.Error(), "cannot open key backup") {
		t.Errorf("restore with a wrong passphrase: %v", err)
	}
	laptop.env["QCHAT_BACKUP_SECRET"] = alice.env["QCHAT_BACKUP_SECRET"]
	laptop.do(ctx, "backup", "restore")
	if info, err := os.Stat(filepath.Join(laptop.dir(), keysFile)); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("restored keys.json: %v, %v", info, err)
	}

	// The laptop rotates: the backup is rewritten with the new key (its
	// passphrase from QCHAT_BACKUP_SECRET), and bob seals to the new key.
	laptop.do(ctx, "rotate-key")
	bob.do(ctx, "send", "@alice", "after the new device")
	hist := laptop.do(ctx, "history", "@bob")
	if !strings.Contains(hist, "before the new device") || !strings.Contains(hist, "after the new device") || strings.Contains(hist, "cannot open") {
		t.Errorf("laptop history:\n%s", hist)
	}
	// The first machine learns its key is no longer the current one, and
	// catches up from the rewritten backup.
	if _, note, err := alice.exec(ctx, "login", "alice"); err != nil || !strings.Contains(note, "made on another device") || !strings.Contains(note, "backup restore") {
		t.Errorf("login on the first machine: %v, said:\n%s", err, note)
	}
	if hist := alice.do(ctx, "history", "@bob"); !strings.Contains(hist, "cannot open: sealed for a key this device does not have") {
		t.Errorf("first machine before restoring:\n%s", hist)
	}
	alice.do(ctx, "backup", "restore")
	if hist := alice.do(ctx, "history", "@bob"); !strings.Contains(hist, "after the new device") || strings.Contains(hist, "cannot open") {
		t.Errorf("first machine after restoring:\n%s", hist)
	}
	alice.do(ctx, "backup", "delete")
	if _, _, err := laptop.exec(ctx, "backup", "restore"); err == nil || !strings.Contains(err.Error(), "no key backup") {
		t.Errorf("restore after delete: %v", err)
	}
}

// TestMessagesArePlain is item 15: one short line with names, the code
// kept for --json; receipts say who read what.
func TestMessagesArePlain(t *testing.T) {
	ctx, srv, alice, bob := signedUpPair(t)
	alice.do(ctx, "room", "create", "Plans")
	stranger := newCLIUser(t, srv.URL, "alice")
	stranger.do(ctx, "keygen")
	path := filepath.Join(t.TempDir(), "notes.txt")
	if err := os.WriteFile(path, []byte("notes"), 0o600); err != nil {
		t.Fatal(err)
	}
	wrong := newCLIUser(t, srv.URL, "alice")
	wrong.env["QCHAT_PASSWORD"] = "not it"
	for _, tc := range []struct {
		who  *cliUser
		args []string
		msg  string
		code string
	}{
		{wrong, []string{"login", "alice"}, "wrong username or password", "UNAUTHENTICATED"},
		{stranger, []string{"register", "alice"}, "the username alice is taken: choose another", "CONFLICT"},
		{bob, []string{"room", "join", "ZZZZZZZZ"}, "no room has the invite code ZZZZZZZZ: check it with whoever shared it", ""},
		{bob, []string{"send", "Plans", "hi"}, `you are in no room called "Plans" (qchat rooms lists yours; @name is a person)`, "NOT_FOUND"},
		{bob, []string{"send", "@carol", "hi"}, "there is no user called carol", "NOT_FOUND"},
		{bob, []string{"upload", "Plans", path}, `you are in no room called "Plans" (qchat rooms lists yours; @name is a person)`, "NOT_FOUND"},
		{bob, []string{"download", "00000000-0000-4000-8000-000000000000"}, "there is no file 00000000-0000-4000-8000-000000000000 that you can see", "NOT_FOUND"},
	} {
		_, _, err := tc.who.exec(ctx, tc.args...)
		var f *failure
		if !errors.As(err, &f) || f.msg != tc.msg || (tc.code != "" && f.code != tc.code) {
			t.Errorf("qchat %s: %v (code %v), want %q (code %s)", strings.Join(tc.args, " "), err, f, tc.msg, tc.code)
			continue
		}
		var line bytes.Buffer
		_, _, err = tc.who.exec(ctx, append(tc.args, "--json")...)
		errors.As(err, &f)
		f.print(&line)
		var j struct{ Error, Code string }
		if json.Unmarshal(line.Bytes(), &j) != nil || j.Error != tc.msg || j.Code == "" {
			t.Errorf("qchat %s --json printed %q", strings.Join(tc.args, " "), line.String())
		}
	}

	// Receipts name the reader and the message, not ids.
	var room struct{ Code string }
	if err := json.Unmarshal([]byte(alice.do(ctx, "room", "create", "Lab", "--json")), &room); err != nil {
		t.Fatal(err)
	}
	bob.do(ctx, "room", "join", room.Code)
	aliceLive := alice.listen(ctx)
	bobLive := bob.listen(ctx, "--json")
	srv.WaitSubscribers(t, 10)
	alice.do(ctx, "send", "Lab", "lunch at noon?")
	bobLive.waitText(t, "lunch at noon?")
	aliceLive.waitFor(t, "the receipt", func() bool {
		return strings.Contains(aliceLive.out.String(), `  bob read your message "lunch at noon?" in Lab`)
	})
}
