package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/term"

	"github.com/qchat/qchat/client"
	"github.com/qchat/qchat/pqcrypto"
)

const defaultServer = "http://localhost:8080"

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// errUsage marks errors in the command line itself (exit status 2).
var errUsage = errors.New("usage")

// errHelp ends a command that was asked for --help after its help was
// printed (exit status 0).
var errHelp = errors.New("help shown")

func usageErr(format string, a ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, a...))
}

const usage = `qchat — end-to-end encrypted, post-quantum chat from the command line

Usage: qchat [global flags] COMMAND [arguments] [flags]

Keys and account
  keygen [--algorithm ML_KEM_768|X_WING] [--encrypt]
                              new identity key (ML-DSA-65) and key pair; the
                              secret seeds go to keys.json (0600), sealed under
                              a passphrase if one is given
  register USERNAME           create an account with the generated keys
  login USERNAME | logout     open / end a session (token in session.json, 0600)
  fingerprint [@user]         identity and key fingerprints
  rotate-key [--algorithm A]  new key pair, certified by your identity key and
                              published as current; old secret keys are kept,
                              and the key backup is rewritten (its secret is
                              asked for)
  backup create [--recovery-key] | restore | delete
                              key backup on the server, sealed with a passphrase
                              (12 characters or more) or a generated recovery
                              key that the server never sees
  reset-identity              new identity key when every device and the backup
                              are lost (needs the password; contacts are warned)

Contacts and trust
  contacts                    users you have met, with their verification state
  verify @user [--mark]       the 60-digit safety number of you and @user, to
                              compare in person; --mark records that it matched
  trust @user                 accept @user's new identity key after a warning

Rooms
  rooms                       my rooms and direct conversations, with unread counts
  room create NAME [--direct] | join CODE | members ROOM
  room add ROOM @user | remove ROOM @user | leave ROOM
  room rename ROOM NAME | delete ROOM

Messages and files (ROOM is a room id or the name of one of my rooms)
  send ROOM|@user TEXT...     seal, sign and send a message
  history ROOM|@user [--limit N]
  listen [ROOM]               live messages, typing, read receipts and key
                              changes (Ctrl-C ends); reconnects and catches up
  upload ROOM|@user FILE [--type MIME]
  download DOCUMENT_ID [-o FILE]

  version                     print the version

Global flags (anywhere on the line, before or after the command)
  --profile NAME              use a separate account on this machine: its own
                              keys and session (or QCHAT_PROFILE)
  --server URL                server (or QCHAT_SERVER; default http://localhost:8080)
  --json                      machine-readable output, one JSON value per line;
                              errors too, as {"error":...,"code":...} on stderr
  --password-file F           password (or QCHAT_PASSWORD; else a prompt)
  --passphrase-file F         key store passphrase (or QCHAT_PASSPHRASE; else a prompt)
  --backup-secret-file F      key backup passphrase or recovery key (or
                              QCHAT_BACKUP_SECRET; else a prompt)

Flags and arguments may come in any order. An argument that starts with a
dash and a letter is a flag, and an unknown one is an error; everything after
"--" is an argument:  qchat send Plans -- -hello   (text such as
"-5 degrees outside", which is not written like a flag, needs no "--").

"qchat COMMAND --help" describes a command. Files live in the qchat directory
of the user config dir ($QCHAT_CONFIG_DIR overrides it), a profile's in its
profiles/NAME subdirectory. Tokens, passwords and secret keys are never printed.
`

const backupUsage = `Usage: qchat backup SUBCOMMAND [flags]

  create [--recovery-key]     seal your secret keys with a passphrase (or a
                              generated recovery key, shown once) and store
                              them on the server, replacing any earlier backup
  restore [--encrypt]         after qchat login on a device without keys: fetch
                              the backup and open it here
  delete                      delete the backup from the server

"qchat backup SUBCOMMAND --help" describes one.
`

const roomUsage = `Usage: qchat room SUBCOMMAND [arguments] [flags]

  create NAME [--direct]      a new room; prints its invite code
  join CODE                   join a room by its invite code
  members ROOM                who is in a room, with key fingerprints and
                              whether you verified them
  add ROOM @user              add someone (owner or admin)
  remove ROOM @user           remove someone (owner or admin, or yourself)
  leave ROOM                  leave a room
  rename ROOM NAME            rename a room (owner)
  delete ROOM                 delete a room (owner)

"qchat room SUBCOMMAND --help" describes one.
`

// app is one invocation: the environment and streams run was given, the
// parsed common flags, and the state loaded from the config dir.
type app struct {
	stdin          io.Reader
	stdinLines     *bufio.Reader // stdin, once a secret was read from it
	stdout, stderr io.Writer
	getenv         func(string) string

	dir            string // config dir, known once the flags are parsed
	profile        string
	serverFlag     string
	json           bool
	passwordFile   string
	passphraseFile string
	passphrase     []byte // cached after the first prompt or file read
	backupFile     string // --backup-secret-file

	pinStore    *filePins        // contacts.json, once the config dir is known
	priorBackup *pqcrypto.Backup // the backup rotate-key replaces, opened with its secret

	// Set by start for the commands that need them.
	client   *client.Client
	session  *session
	ring     client.Keyring
	identity *pqcrypto.IdentityKey
	seeds    map[string]string // the unlocked seeds, as this process last read or wrote them
}

// run is the whole program: args without the program name, the environment
// through getenv. Its error is already the one line a person should read
// (see failure); --help is not an error.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) error {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv}
	err := a.dispatch(ctx, args)
	if err == nil || errors.Is(err, errHelp) {
		return nil
	}
	return a.explain(err)
}

func (a *app) dispatch(ctx context.Context, args []string) error {
	// Global flags may precede the command: "qchat --server URL rooms".
	fs := a.flags("")
	showVersion := fs.Bool("version", false, "print the version")
	rest, err := parseArgs(fs, args, true)
	if errors.Is(err, errHelp) || (err == nil && len(rest) > 0 && rest[0] == "help" && len(rest) == 1) {
		fmt.Fprint(a.stdout, usage)
		return errHelp
	}
	if err != nil {
		return err
	}
	if *showVersion {
		rest = []string{"version"}
	}
	if len(rest) == 0 {
		fmt.Fprint(a.stderr, usage)
		return usageErr("no command")
	}
	cmd, rest := rest[0], rest[1:]
	if cmd == "help" { // help COMMAND is COMMAND --help
		cmd, rest = rest[0], append(rest[1:], "--help")
	}
	if group, ok := groups[cmd]; ok {
		sub, err := parseArgs(fs, rest, true)
		if errors.Is(err, errHelp) {
			fmt.Fprint(a.stdout, group.usage)
			return errHelp
		}
		if err != nil {
			return err
		}
		if len(sub) == 0 {
			fmt.Fprint(a.stderr, group.usage)
			return usageErr("%s needs a subcommand: %s", cmd, group.subs)
		}
		cmd, rest = cmd+" "+sub[0], sub[1:]
	}
	h, ok := a.commands()[cmd]
	if !ok {
		return usageErr("unknown command %q (see qchat --help)", cmd)
	}
	return h(ctx, rest)
}

type handler func(ctx context.Context, args []string) error

// groups are the commands that take a subcommand.
var groups = map[string]struct{ usage, subs string }{
	"room":   {roomUsage, "create, join, members, add, remove, leave, rename or delete"},
	"backup": {backupUsage, "create, restore or delete"},
}

func (a *app) commands() map[string]handler {
	return map[string]handler{
		"keygen":         a.keygen,
		"register":       a.register,
		"login":          a.login,
		"logout":         a.logout,
		"fingerprint":    a.fingerprint,
		"rotate-key":     a.rotateKey,
		"reset-identity": a.resetIdentity,
		"backup create":  a.backupCreate,
		"backup restore": a.backupRestore,
		"backup delete":  a.backupDelete,
		"contacts":       a.contacts,
		"verify":         a.verify,
		"trust":          a.trust,
		"rooms":          a.rooms,
		"room create":    a.roomCreate,
		"room join":      a.roomJoin,
		"room members":   a.roomMembers,
		"room add":       a.roomAdd,
		"room remove":    a.roomRemove,
		"room leave":     a.roomLeave,
		"room rename":    a.roomRename,
		"room delete":    a.roomDelete,
		"send":           a.send,
		"history":        a.history,
		"listen":         a.listen,
		"upload":         a.upload,
		"download":       a.download,
		"version":        a.printVersion,
	}
}

func (a *app) printVersion(ctx context.Context, args []string) error {
	if _, err := a.start(ctx, a.flags("version"), args, spec{about: "Prints the version of this qchat."}); err != nil {
		return err
	}
	return a.out(map[string]string{"version": version}, "qchat %s\n", version)
}

// configDir is $QCHAT_CONFIG_DIR or the user config dir's qchat directory;
// a profile (--profile or QCHAT_PROFILE) is a subdirectory of it, so that
// several accounts share a machine without setting variables.
func (a *app) configDir() (string, error) {
	base := a.getenv("QCHAT_CONFIG_DIR")
	if base == "" {
		d, err := os.UserConfigDir()
		if err != nil {
			return "", fmt.Errorf("no config dir (set QCHAT_CONFIG_DIR): %w", err)
		}
		base = filepath.Join(d, "qchat")
	}
	p := a.profile
	if p == "" {
		p = a.getenv("QCHAT_PROFILE")
	}
	if p == "" {
		return base, nil
	}
	if !validProfile(p) {
		return "", usageErr("profile %q: use letters, digits, '.', '_' or '-'", p)
	}
	return filepath.Join(base, "profiles", p), nil
}

func validProfile(p string) bool {
	if p == "." || p == ".." || len(p) > 64 {
		return false
	}
	for _, r := range p {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// flags makes a command's flag set with the global flags on it. Their
// defaults are the values already parsed, so a global flag given before the
// command survives the command's own parse.
func (a *app) flags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(strings.TrimSpace("qchat "+name), flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&a.profile, "profile", a.profile, "a separate account `NAME` on this machine (or QCHAT_PROFILE)")
	fs.StringVar(&a.serverFlag, "server", a.serverFlag, "server `URL` (or QCHAT_SERVER)")
	fs.BoolVar(&a.json, "json", a.json, "machine-readable output")
	fs.StringVar(&a.passwordFile, "password-file", a.passwordFile, "read the password from `FILE`")
	fs.StringVar(&a.passphraseFile, "passphrase-file", a.passphraseFile, "read the key store passphrase from `FILE`")
	fs.StringVar(&a.backupFile, "backup-secret-file", a.backupFile, "read the key backup passphrase or recovery key from `FILE`")
	return fs
}

// spec is what a command takes and needs; start does the rest.
type spec struct {
	args     string // positional arguments, as in the usage line
	about    string // one or two sentences for --help
	min, max int    // how many positional arguments (max -1: no limit)
	signIn   bool   // needs a session: a.client and a.session are set
	keys     bool   // needs the secret keys: a.ring is set
}

// start is every command's beginning: it parses the flags and arguments,
// answers --help, finds the config dir, and signs in and unlocks the keys
// when the command needs them.
func (a *app) start(ctx context.Context, fs *flag.FlagSet, args []string, sp spec) ([]string, error) {
	pos, err := parseArgs(fs, args, false)
	if errors.Is(err, errHelp) {
		a.commandHelp(fs, sp)
		return nil, errHelp
	}
	if err != nil {
		return nil, err
	}
	if len(pos) < sp.min || (sp.max >= 0 && len(pos) > sp.max) {
		return nil, usageErr("%s %s (see %s --help)", fs.Name(), sp.args, fs.Name())
	}
	if a.dir, err = a.configDir(); err != nil {
		return nil, err
	}
	if sp.signIn {
		if a.client, a.session, err = a.authed(); err != nil {
			return nil, err
		}
	}
	if sp.keys {
		if err := a.unlock(ctx); err != nil {
			return nil, err
		}
	}
	return pos, nil
}

func (a *app) commandHelp(fs *flag.FlagSet, sp spec) {
	fmt.Fprintf(a.stdout, "Usage: %s %s [flags]\n\n%s\n\nFlags (before or after the arguments):\n", fs.Name(), sp.args, sp.about)
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		if name != "" {
			name = " " + name
		}
		dash := "--"
		if len(f.Name) == 1 {
			dash = "-"
		}
		fmt.Fprintf(a.stdout, "  %s%s%s\n        %s\n", dash, f.Name, name, usage)
	})
}

// flagName reports whether arg is written as a flag: one or two dashes and
// a letter, then letters, digits or dashes, then optionally =value. Every
// other argument is text, even if it starts with a dash: "-5 degrees
// outside", "-", "- item".
func flagName(arg string) (name, value string, hasValue, ok bool) {
	s, found := strings.CutPrefix(arg, "--")
	if !found {
		if s, found = strings.CutPrefix(arg, "-"); !found {
			return "", "", false, false
		}
	}
	name, value, hasValue = strings.Cut(s, "=")
	if name == "" || !(name[0] >= 'a' && name[0] <= 'z' || name[0] >= 'A' && name[0] <= 'Z') {
		return "", "", false, false
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return "", "", false, false
		}
	}
	return name, value, hasValue, true
}

// parseArgs sets the flags found anywhere in args ("send lab hi --json" as
// well as "send --json lab hi") and returns the other arguments in order.
// Everything after "--" is an argument. An unknown flag is an error, never
// text: a message that starts like a flag goes after "--". With
// stopAtArg, parsing stops at the first argument, which is returned with
// everything after it untouched (the global flags before a command).
func parseArgs(fs *flag.FlagSet, args []string, stopAtArg bool) ([]string, error) {
	var pos []string
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if arg == "--" {
			if stopAtArg && i+1 < len(args) {
				return args[i+1:], nil
			}
			return append(pos, args[i+1:]...), nil
		}
		name, value, hasValue, ok := flagName(arg)
		if !ok {
			if stopAtArg {
				return args[i:], nil
			}
			pos = append(pos, arg)
			continue
		}
		if name == "h" || name == "help" {
			return nil, errHelp
		}
		f := fs.Lookup(name)
		if f == nil {
			return nil, usageErr("unknown flag %s (see %s --help; an argument that starts with a dash goes after --)", arg, fs.Name())
		}
		if b, isBool := f.Value.(interface{ IsBoolFlag() bool }); isBool && b.IsBoolFlag() {
			if !hasValue {
				value = "true"
			}
		} else if !hasValue {
			if i+1 == len(args) {
				return nil, usageErr("flag %s needs a value", arg)
			}
			i++
			value = args[i]
		}
		if err := fs.Set(name, value); err != nil {
			return nil, usageErr("flag %s: %v", arg, err)
		}
	}
	return pos, nil
}

// out prints v as one JSON line with --json, or the human form otherwise.
func (a *app) out(v any, human string, args ...any) error {
	if a.json {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(a.stdout, "%s\n", b)
		return err
	}
	_, err := fmt.Fprintf(a.stdout, human, args...)
	return err
}

func (a *app) loadSession() (*session, error) {
	var s session
	if _, err := readJSON(a.dir, sessionFile, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

func (a *app) serverURL(s *session) string {
	switch {
	case a.serverFlag != "":
		return a.serverFlag
	case a.getenv("QCHAT_SERVER") != "":
		return a.getenv("QCHAT_SERVER")
	case s != nil && s.Server != "":
		return s.Server
	}
	return defaultServer
}

// anonymous is a client without a session, for register and login.
func (a *app) anonymous() (*client.Client, error) {
	s, err := a.loadSession()
	if err != nil {
		return nil, err
	}
	return client.New(a.serverURL(s), client.WithPins(a.pins()))
}

// pins is contacts.json as the SDK's trust store.
func (a *app) pins() *filePins {
	if a.pinStore == nil {
		a.pinStore = &filePins{dir: a.dir}
	}
	return a.pinStore
}

// authed is a client with the stored session; the session's token is used
// only with the server it was issued by.
func (a *app) authed() (*client.Client, *session, error) {
	s, err := a.loadSession()
	if err != nil {
		return nil, nil, err
	}
	url := a.serverURL(s)
	if s.Token == "" || strings.TrimRight(s.Server, "/") != strings.TrimRight(url, "/") {
		return nil, nil, fmt.Errorf("not logged in to %s: run %s login USERNAME", url, a.me())
	}
	c, err := client.New(url, client.WithSession(s.Token, s.UserID), client.WithPins(a.pins()))
	if err != nil {
		return nil, nil, err
	}
	return c, s, nil
}

func (a *app) loadKeys() (*keyStore, error) {
	var ks keyStore
	ok, err := readJSON(a.dir, keysFile, &ks)
	if err != nil {
		return nil, err
	}
	if !ok || len(ks.Keys) == 0 {
		return nil, errNoKeys{dir: a.dir, me: a.me()}
	}
	return &ks, nil
}

// errNoKeys: this config dir has no key store.
type errNoKeys struct{ dir, me string }

func (e errNoKeys) Error() string {
	return fmt.Sprintf("no keys on this device (%s): run %s keygen for a new account; for an existing one, log in and run %s backup restore (or, with no backup, %s reset-identity)",
		filepath.Join(e.dir, keysFile), e.me, e.me, e.me)
}

// me is how hints name this program, with the profile in use: the command
// a person should type next.
func (a *app) me() string {
	if a.profile != "" {
		return "qchat --profile " + a.profile
	}
	return "qchat"
}

func (a *app) keyring() (client.Keyring, error) {
	ks, err := a.loadKeys()
	if err != nil {
		return nil, err
	}
	return ks.keyring(a.getPassphrase)
}

// unlock loads the secret keys: a.ring, and a.identity, which the client
// signs with. A store made before version 2 gets its identity key here, at
// the first signed-in command that needs the keys (login does it too).
func (a *app) unlock(ctx context.Context) error {
	ks, err := a.loadKeys()
	if err != nil {
		return err
	}
	seeds, err := ks.seeds(a.getPassphrase)
	if err != nil {
		return err
	}
	a.seeds = seeds
	if a.ring, err = ks.keyringFrom(seeds); err != nil {
		return err
	}
	if a.identity, err = ks.identity(seeds); err != nil {
		return err
	}
	if a.client == nil {
		return nil
	}
	if a.identity == nil {
		if a.identity, err = a.upgradeIdentity(ctx, ks, seeds); err != nil {
			return err
		}
	}
	a.client.SetIdentity(a.identity)
	return nil
}

// secret reads a password or passphrase: from the file flag, then the
// environment variable, then a prompt without echo on a terminal, then a
// line of stdin (for scripts that pipe it).
func (a *app) secret(file, env, prompt string) ([]byte, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", prompt, err)
		}
		return []byte(strings.TrimRight(string(b), "\r\n")), nil
	}
	if v := a.getenv(env); v != "" {
		return []byte(v), nil
	}
	if f, ok := a.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprintf(a.stderr, "%s: ", prompt)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(a.stderr)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", prompt, err)
		}
		return b, nil
	}
	// One reader for the whole command: a script may pipe several secrets
	// (the key store passphrase, then the password), one per line, and a
	// reader of its own per secret would swallow the lines after its own.
	if a.stdinLines == nil {
		a.stdinLines = bufio.NewReader(a.stdin)
	}
	line, err := a.stdinLines.ReadString('\n')
	if err != nil && (err != io.EOF || line == "") {
		return nil, fmt.Errorf("no %s: use a file flag, %s, or a terminal", prompt, env)
	}
	return []byte(strings.TrimRight(line, "\r\n")), nil
}

func (a *app) getPassphrase() ([]byte, error) {
	if a.passphrase == nil {
		p, err := a.secret(a.passphraseFile, "QCHAT_PASSPHRASE", "key store passphrase")
		if err != nil {
			return nil, err
		}
		a.passphrase = p
	}
	return a.passphrase, nil
}

// conversation resolves ROOM|@user: "@name" is a user; otherwise a room id or
// the name of one of my rooms. The title is how messages name it.
func (a *app) conversation(ctx context.Context, c *client.Client, arg string) (client.Conversation, string, error) {
	if strings.HasPrefix(arg, "@") {
		u, err := a.user(ctx, c, arg)
		if err != nil {
			return client.Conversation{}, "", err
		}
		return client.WithUser(u.Id), "@" + u.Username, nil
	}
	rooms, err := c.MyRooms(ctx)
	if err != nil {
		return client.Conversation{}, "", fail(err, "cannot list your rooms")
	}
	var byName []client.Room
	for _, r := range rooms {
		if r.Id == arg {
			return client.InRoom(r.Id), r.Name, nil
		}
		if r.Name == arg {
			byName = append(byName, r)
		}
	}
	switch len(byName) {
	case 0:
		return client.Conversation{}, "", &failure{msg: fmt.Sprintf("you are in no room called %q (qchat rooms lists yours; @name is a person)", arg), code: client.CodeNotFound}
	case 1:
		return client.InRoom(byName[0].Id), byName[0].Name, nil
	}
	ids := make([]string, len(byName))
	for i, r := range byName {
		ids[i] = r.Id
	}
	sort.Strings(ids)
	return client.Conversation{}, "", &failure{msg: fmt.Sprintf("%d of your rooms are called %q; name one by its id: %s", len(byName), arg, strings.Join(ids, ", "))}
}

// user looks up @name (the @ is optional).
func (a *app) user(ctx context.Context, c *client.Client, arg string) (*client.User, error) {
	name := strings.TrimPrefix(arg, "@")
	u, err := c.UserByUsername(ctx, name)
	if client.HasCode(err, client.CodeNotFound) {
		return nil, &failure{msg: fmt.Sprintf("there is no user called %s", name), code: client.CodeNotFound, cause: err}
	}
	if err != nil {
		return nil, fail(err, "cannot look up %s", name)
	}
	return u, nil
}

func (a *app) userID(ctx context.Context, c *client.Client, arg string) (string, string, error) {
	u, err := a.user(ctx, c, arg)
	if err != nil {
		return "", "", err
	}
	return u.Id, u.Username, nil
}

func parseAlgorithm(s string) (pqcrypto.Algorithm, error) {
	alg, err := pqcrypto.ParseAlgorithm(strings.ToUpper(strings.ReplaceAll(s, "-", "_")))
	if err != nil {
		return "", usageErr("--algorithm must be ML_KEM_768 or X_WING, not %q", s)
	}
	return alg, nil
}
