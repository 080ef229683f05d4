package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qchat/qchat/internal/qchattest/syncbuf"
)

// TestEndToEnd is the acceptance scenario against the real server
// binary, driven only through the qchat binary: two people with separate
// config dirs register, share a room, chat live with decryption on both
// sides, exchange a PDF, rotate a key and still read old messages; finally
// the database files must contain none of the plaintexts.
//
// Nothing in it depends on the machine's speed: the binaries are built
// before anything is timed, every wait is for a condition (an event printed,
// a line written), and the only bounds are hang (a condition that never
// comes) and go test's -timeout. The server runs with its default rate
// limits: the scenario is what a person does, and must fit them.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs two binaries")
	}
	tmp := t.TempDir()
	serverBin, qchatBin := buildBinaries(t, tmp)
	ctx := t.Context()
	dataDir := filepath.Join(tmp, "data")
	url := startServer(t, ctx, serverBin, dataDir)

	nonce := randomHex(t)
	alice := newPerson(t, qchatBin, tmp, "alice", url, "passphrase of alice "+nonce)
	alice.env = append(alice.env, "QCHAT_BACKUP_SECRET=backup passphrase of alice "+nonce)
	bob := newPerson(t, qchatBin, tmp, "bob", url, "")

	alice.run(ctx, "keygen", "--algorithm", "X_WING") // sealed under QCHAT_PASSPHRASE
	bob.run(ctx, "keygen", "--algorithm", "ML_KEM_768")
	for _, p := range []*person{alice, bob} {
		info, err := os.Stat(filepath.Join(p.dir, keysFile))
		if err != nil || info.Mode().Perm() != 0o600 {
			t.Fatalf("%s's keys.json: %v, mode %v", p.name, err, info.Mode())
		}
	}
	alice.run(ctx, "register", "alice")
	bob.run(ctx, "register", "bob")

	var room struct{ ID, Name, Code string }
	alice.jsonOut(ctx, &room, "room", "create", "lab", "--json")
	bob.run(ctx, "room", "join", room.Code)
	members := bob.run(ctx, "room", "members", "lab")
	if !strings.Contains(members, "alice") || !strings.Contains(members, "bob") {
		t.Fatalf("members:\n%s", members)
	}

	aliceLive := alice.listen(ctx)
	bobLive := bob.listen(ctx)
	// A subscription starts a moment after the socket says so; probe until
	// each listener has seen its owner's own message.
	for _, p := range []struct {
		who  *person
		live *listener
	}{{alice, aliceLive}, {bob, bobLive}} {
		ok := false
		for i, deadline := 0, time.Now().Add(hang); !ok && time.Now().Before(deadline); i++ {
			probe := fmt.Sprintf("probe %d from %s", i, p.who.name)
			p.who.run(ctx, "send", "lab", probe)
			// A probe sent before the subscription started is never shown:
			// the next one is sent after a pause, not after a budget.
			ok = p.live.waitText(probe, time.Second) != nil
		}
		if !ok {
			t.Fatalf("%s's listener never received anything", p.who.name)
		}
	}

	helloBob := "hello bob, this is alice " + nonce
	helloAlice := "hi alice, bob here " + nonce
	alice.run(ctx, "send", "lab", helloBob)
	bob.run(ctx, "send", "lab", helloAlice)
	for _, c := range []struct {
		live       *listener
		text, from string
	}{{bobLive, helloBob, "alice"}, {aliceLive, helloAlice, "bob"}} {
		ev := c.live.waitText(c.text, hang)
		if ev == nil {
			t.Fatalf("listener never printed %q; got:\n%s", c.text, c.live.output())
		}
		if ev["from"] != c.from {
			t.Errorf("%q came from %v, want %s", c.text, ev["from"], c.from)
		}
	}
	// Alice's listener marks bob's message read; bob's listener shows it.
	if bobLive.waitEvent(func(ev map[string]any) bool { return ev["event"] == "receipt" && ev["by"] == "alice" }, hang) == nil {
		t.Errorf("bob's listener showed no read receipt from alice; got:\n%s", bobLive.output())
	}

	// A PDF goes up sealed and comes back identical.
	pdf := samplePDF(nonce)
	pdfPath := filepath.Join(tmp, "report.pdf")
	if err := os.WriteFile(pdfPath, pdf, 0o600); err != nil {
		t.Fatal(err)
	}
	var doc struct{ ID, MimeType string }
	alice.jsonOut(ctx, &doc, "upload", "lab", pdfPath, "--json")
	if doc.MimeType != "application/pdf" {
		t.Errorf("uploaded as %q", doc.MimeType)
	}
	if bobLive.waitEvent(func(ev map[string]any) bool {
		at, _ := ev["attachment"].(map[string]any)
		return at != nil && at["id"] == doc.ID
	}, hang) == nil {
		t.Errorf("bob's listener did not show the attachment")
	}
	got := filepath.Join(tmp, "bob-report.pdf")
	bob.run(ctx, "download", doc.ID, "-o", got)
	if b, err := os.ReadFile(got); err != nil || !bytes.Equal(b, pdf) {
		t.Fatalf("downloaded PDF differs (%d bytes, %v), want the %d bytes uploaded", len(b), err, len(pdf))
	}

	// Alice backs her keys up; her rotation below rewrites the backup (its
	// passphrase comes from QCHAT_BACKUP_SECRET, as a script gives it).
	alice.run(ctx, "backup", "create")

	// Both rotate; old messages still open from history, new ones too.
	bob.run(ctx, "rotate-key")
	alice.run(ctx, "rotate-key", "--algorithm", "ML_KEM_768")
	afterRotation := "after rotation " + nonce
	alice.run(ctx, "send", "lab", afterRotation)
	for _, p := range []*person{alice, bob} {
		hist := p.run(ctx, "history", "lab", "--json")
		for _, want := range []string{helloBob, helloAlice, afterRotation} {
			if !strings.Contains(hist, `"text":"`+want+`"`) {
				t.Errorf("%s's history lacks %q:\n%s", p.name, want, hist)
			}
		}
		if strings.Contains(hist, `"error"`) {
			t.Errorf("%s's history has undecryptable messages:\n%s", p.name, hist)
		}
	}
	if fp := alice.run(ctx, "fingerprint", "@bob"); !regexp.MustCompile(`([0-9a-f]{4} ){7}[0-9a-f]{4}`).MatchString(fp) {
		t.Errorf("fingerprint output: %q", fp)
	}

	// Alice on a second machine: a fresh config dir, a login that says to
	// restore, the backup opened with her passphrase, and the whole history
	// readable, from before her rotation too.
	laptop := newPerson(t, qchatBin, tmp, "alice-laptop", url, "")
	laptop.env = append(laptop.env, "QCHAT_PASSWORD=password of alice", "QCHAT_BACKUP_SECRET=backup passphrase of alice "+nonce)
	if _, note := laptop.runOK(ctx, "login", "alice"); !strings.Contains(note, "backup restore") {
		t.Errorf("login on a fresh machine said:\n%s", note)
	}
	laptop.run(ctx, "backup", "restore")
	hist := laptop.run(ctx, "history", "lab", "--json")
	for _, want := range []string{helloBob, helloAlice, afterRotation} {
		if !strings.Contains(hist, `"text":"`+want+`"`) {
			t.Errorf("the restored laptop's history lacks %q:\n%s", want, hist)
		}
	}
	if strings.Contains(hist, `"error"`) {
		t.Errorf("the restored laptop cannot open some of the history:\n%s", hist)
	}

	// Both users' verify print the same safety number.
	number := regexp.MustCompile(`\b(\d{5} ){11}\d{5}\b`)
	if a, b := number.FindString(alice.run(ctx, "verify", "@bob")), number.FindString(bob.run(ctx, "verify", "@alice")); a == "" || a != b {
		t.Errorf("safety numbers %q and %q, want the same", a, b)
	}

	// Messages written straight into the database under alice's name: a
	// copy of her genuine message under a new id (her signature copied), a
	// new text signed by someone else, and one labelled version 1. Bob's
	// client shows the first two as unverifiable and never their text,
	// and the third only as "sender not verified".
	var genuine struct{ ID string }
	alice.jsonOut(ctx, &genuine, "send", "lab", "genuinely from alice "+nonce, "--json")
	forged := forgeMessages(t, ctx, dataDir, genuine.ID, "forged in alice's name "+nonce)
	var rows []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(bob.run(ctx, "history", "lab", "--json")), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("history line %q: %v", line, err)
		}
		rows = append(rows, m)
	}
	byID := map[string]map[string]any{}
	for _, m := range rows {
		byID[m["id"].(string)] = m
	}
	if m := byID[genuine.ID]; m == nil || m["signed"] != true || m["text"] != "genuinely from alice "+nonce {
		t.Errorf("the genuine message: %v", m)
	}
	for _, id := range []string{forged.copied, forged.resigned} {
		if m := byID[id]; m == nil || m["unverifiable"] != true || m["text"] != nil || m["from"] != "alice" {
			t.Errorf("forged message %s: %v, want it unverifiable and without text", id, m)
		}
	}
	if m := byID[forged.v1]; m == nil || m["signed"] != false || m["text"] == nil {
		t.Errorf("forged version 1 message: %v, want its text marked unsigned", m)
	}
	human := bob.run(ctx, "history", "lab")
	if strings.Contains(human, "alice: forged in alice's name") || !strings.Contains(human, "alice (sender not verified): forged in alice's name") ||
		!strings.Contains(human, "unverifiable") {
		t.Errorf("bob's history shows:\n%s", human)
	}

	// The server swaps bob's identity key (written straight into its
	// tables): alice's client refuses to send to bob and warns; trust
	// clears the warning.
	swapIdentity(t, ctx, dataDir, "bob")
	_, stderr, err := alice.runErr(ctx, "send", "@bob", "must not be sealed to a stranger")
	if err == nil || !strings.Contains(stderr, "WARNING: bob's identity key has changed") || !strings.Contains(stderr, "trust @bob") {
		t.Errorf("send after the swap: %v\n%s", err, stderr)
	}
	alice.run(ctx, "trust", "@bob")
	if out := alice.run(ctx, "verify", "@bob"); !number.MatchString(out) {
		t.Errorf("verify after trust:\n%s", out)
	}

	aliceLive.stop(t)
	bobLive.stop(t)

	// Nothing readable may reach the database: neither the texts nor the
	// file, nor the secret part of the key store.
	secrets := map[string][]byte{
		"hello bob": []byte(helloBob), "hi alice": []byte(helloAlice), "after rotation": []byte(afterRotation),
		"pdf marker": []byte("QChat e2e secret " + nonce), "pdf": pdf,
		"backup passphrase": []byte("backup passphrase of alice " + nonce),
	}
	// Nor a secret key: bob's key store is unencrypted, so its seeds are
	// readable here, and must not be found in the database either.
	var bobKeys keyStore
	if _, err := readJSON(bob.dir, keysFile, &bobKeys); err != nil {
		t.Fatal(err)
	}
	for pub, seed := range bobKeys.Seeds {
		secrets["bob's seed of "+pub[:8]] = []byte(seed)
	}
	grepDatabase(t, dataDir, secrets)
}

// hang bounds a wait for something that should happen: it catches a
// condition that never comes, with a clearer message than go test's
// -timeout, and is long enough never to be a judgement on speed.
const hang = 3 * time.Minute

type person struct {
	t                    *testing.T
	name, bin, dir, home string
	env                  []string
}

func newPerson(t *testing.T, bin, tmp, name, url, passphrase string) *person {
	dir := filepath.Join(tmp, name, "config")
	home := filepath.Join(tmp, name, "home")
	if err := os.MkdirAll(home, 0o700); err != nil {
		t.Fatal(err)
	}
	env := []string{
		"QCHAT_CONFIG_DIR=" + dir, "QCHAT_SERVER=" + url, "QCHAT_PASSWORD=password of " + name,
		"HOME=" + home, "PATH=" + os.Getenv("PATH"),
	}
	if passphrase != "" {
		env = append(env, "QCHAT_PASSPHRASE="+passphrase)
	}
	return &person{t: t, name: name, bin: bin, dir: dir, home: home, env: env}
}

// run runs one qchat command to completion and returns its stdout.
func (p *person) run(ctx context.Context, args ...string) string {
	p.t.Helper()
	stdout, stderr, err := p.runErr(ctx, args...)
	if err != nil {
		p.t.Fatalf("%s: qchat %s: %v\n%s%s", p.name, strings.Join(args, " "), err, stdout, stderr)
	}
	return stdout
}

// runErr runs one qchat command that may fail.
func (p *person) runErr(ctx context.Context, args ...string) (stdout, stderr string, err error) {
	ctx, cancel := context.WithTimeout(ctx, hang)
	defer cancel()
	cmd := exec.CommandContext(ctx, p.bin, args...)
	cmd.Env = p.env
	cmd.Dir = p.home
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

// runOK runs one qchat command that must succeed and returns its stdout
// and stderr (where notes go).
func (p *person) runOK(ctx context.Context, args ...string) (stdout, stderr string) {
	p.t.Helper()
	stdout, stderr, err := p.runErr(ctx, args...)
	if err != nil {
		p.t.Fatalf("%s: qchat %s: %v\n%s%s", p.name, strings.Join(args, " "), err, stdout, stderr)
	}
	return stdout, stderr
}

func (p *person) jsonOut(ctx context.Context, v any, args ...string) {
	p.t.Helper()
	out := p.run(ctx, args...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		p.t.Fatalf("%s: qchat %s: output is not JSON: %v\n%s", p.name, strings.Join(args, " "), err, out)
	}
}

// listener is a background "qchat listen --json".
type listener struct {
	cmd  *exec.Cmd
	done chan error

	mu     sync.Mutex
	events []map[string]any
	raw    strings.Builder
	notify chan struct{} // closed and replaced on every new line
}

func (p *person) listen(ctx context.Context) *listener {
	p.t.Helper()
	cmd := exec.CommandContext(ctx, p.bin, "listen", "--json")
	cmd.Env = p.env
	cmd.Dir = p.home
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 5 * time.Second
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		p.t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		p.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	l := &listener{cmd: cmd, done: make(chan error, 1), notify: make(chan struct{})}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		once := sync.Once{}
		for sc.Scan() {
			l.add(nil, "stderr: "+sc.Text())
			if strings.HasPrefix(sc.Text(), "listening as") {
				once.Do(func() { close(ready) })
			}
		}
	}()
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var ev map[string]any
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				l.add(nil, "not JSON: "+sc.Text())
				continue
			}
			l.add(ev, sc.Text())
		}
		l.done <- cmd.Wait()
	}()
	p.t.Cleanup(func() { _ = cmd.Process.Kill() })
	select {
	case <-ready:
	case err := <-l.done:
		p.t.Fatalf("%s: listen exited: %v\n%s", p.name, err, l.output())
	case <-time.After(hang):
		p.t.Fatalf("%s: listen not ready after %s\n%s", p.name, hang, l.output())
	}
	return l
}

func (l *listener) add(ev map[string]any, line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if ev != nil {
		l.events = append(l.events, ev)
	}
	l.raw.WriteString(line + "\n")
	close(l.notify)
	l.notify = make(chan struct{})
}

func (l *listener) output() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.raw.String()
}

// waitEvent waits up to d for an event matching pred, already printed or new.
func (l *listener) waitEvent(pred func(map[string]any) bool, d time.Duration) map[string]any {
	deadline := time.After(d)
	for {
		l.mu.Lock()
		for _, ev := range l.events {
			if pred(ev) {
				l.mu.Unlock()
				return ev
			}
		}
		notify := l.notify
		l.mu.Unlock()
		select {
		case <-notify:
		case <-deadline:
			return nil
		}
	}
}

func (l *listener) waitText(text string, d time.Duration) map[string]any {
	return l.waitEvent(func(ev map[string]any) bool { return ev["event"] == "message" && ev["text"] == text }, d)
}

// stop interrupts the listener as Ctrl-C would; it must exit cleanly.
func (l *listener) stop(t *testing.T) {
	t.Helper()
	_ = l.cmd.Process.Signal(os.Interrupt)
	select {
	case err := <-l.done:
		if err != nil {
			t.Errorf("listen after SIGINT: %v\n%s", err, l.output())
		}
	case <-time.After(hang):
		t.Errorf("listen still running %s after SIGINT", hang)
	}
}

// buildBinaries builds both binaries before the scenario starts; a build
// (with -race: tens of seconds on a busy machine) is never part of a wait.
func buildBinaries(t *testing.T, dir string) (server, qchat string) {
	t.Helper()
	server, qchat = filepath.Join(dir, "qchat-server"), filepath.Join(dir, "qchat")
	if runtime.GOOS == "windows" {
		server, qchat = server+".exe", qchat+".exe"
	}
	// Under -race the server is built with -race too: its packages are
	// already compiled that way for the client tests, and the scenario
	// doubles as a race check of the server. qchat is built plainly: a race
	// binary takes about a second just to start, and the scenario runs it
	// some thirty times.
	for _, b := range []struct {
		out, pkg string
		race     bool
	}{{server, "github.com/qchat/qchat", raceEnabled}, {qchat, "github.com/qchat/qchat/cmd/qchat", false}} {
		args := []string{"build", "-o", b.out}
		if b.race {
			args = append(args, "-race")
		}
		cmd := exec.CommandContext(t.Context(), "go", append(args, b.pkg)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", b.pkg, err, out)
		}
	}
	return server, qchat
}

// startServer runs the server on a free port and returns its URL once it
// says it is listening; it is interrupted at cleanup.
func startServer(t *testing.T, ctx context.Context, bin, dataDir string) string {
	t.Helper()
	cmd := exec.Command(bin)
	cmd.Env = []string{
		// The default rate limits: two people chatting must never meet them.
		"PORT=0", "DATA_DIR=" + dataDir, "BCRYPT_COST=4", "APP_ENV=development", "LOG_LEVEL=warn", "SHUTDOWN_TIMEOUT=5s",
		"HOME=" + dataDir, "PATH=" + os.Getenv("PATH"),
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncbuf.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(hang):
			_ = cmd.Process.Kill()
			t.Errorf("server still running %s after SIGINT", hang)
		}
	})
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default:
			}
		}
	}()
	re := regexp.MustCompile(`listening on http://\S*:(\d+)`)
	for {
		select {
		case line := <-lines:
			if m := re.FindStringSubmatch(line); m != nil {
				return "http://127.0.0.1:" + m[1]
			}
		case <-exited:
			t.Fatalf("server exited before listening:\n%s", stderr.String())
		case <-time.After(hang):
			t.Fatalf("server not listening after %s:\n%s", hang, stderr.String())
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
	}
}

// grepDatabase fails if any secret occurs in the SQLite files, in the clear
// or as the base64 a careless client would have sent.
func grepDatabase(t *testing.T, dataDir string, secrets map[string][]byte) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dataDir, "qchat.db*"))
	if len(files) == 0 {
		t.Fatalf("no database files in %s", dataDir)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for name, s := range secrets {
			if bytes.Contains(b, s) {
				t.Errorf("%s contains the %s in the clear", filepath.Base(f), name)
			}
		}
	}
	t.Logf("grepped %d database files for %d secrets: %s", len(files), len(secrets), strings.Join(baseNames(files), ", "))
}

func baseNames(paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = filepath.Base(p)
	}
	return out
}

func randomHex(t *testing.T) string {
	b := make([]byte, 8)
	if _, err := io.ReadFull(rand.Reader, b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// samplePDF is a small but well-formed PDF (header, catalog, page, content
// stream, xref, trailer) whose page text carries marker.
func samplePDF(marker string) []byte {
	content := fmt.Sprintf("BT /F1 18 Tf 72 720 Td (QChat e2e secret %s) Tj ET", marker)
	objs := []string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
		fmt.Sprintf("<< /Length %d >>\nstream\n%s\nendstream", len(content), content),
		"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
	}
	var b bytes.Buffer
	b.WriteString("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
	offsets := make([]int, len(objs))
	for i, o := range objs {
		offsets[i] = b.Len()
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", i+1, o)
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(objs)+1)
	for _, off := range offsets {
		fmt.Fprintf(&b, "%010d 00000 n \n", off)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(objs)+1, xref)
	return b.Bytes()
}
