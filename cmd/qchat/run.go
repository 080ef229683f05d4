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

// errUsage marks errors in the command line itself (exit status 2).
var errUsage = errors.New("usage")

func usageErr(format string, a ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, a...))
}

const usage = `qchat — end-to-end encrypted, post-quantum chat from the command line

Usage: qchat COMMAND [flags] [arguments]

Keys and account
  keygen [--algorithm ML_KEM_768|X_WING] [--encrypt] [--force]
                              new key pair; the secret seed goes to keys.json
                              (0600), sealed under a passphrase if one is given
  register USERNAME           create an account with the generated key
  login USERNAME | logout     open / end a session (token in session.json, 0600)
  fingerprint [@user]         key fingerprint to compare out of band
  rotate-key [--algorithm A]  new key pair; old secret keys are kept

Rooms
  rooms                       my rooms and direct conversations, with unread counts
  room create NAME [--direct] | join CODE | members ROOM
  room add ROOM @user | remove ROOM @user | leave ROOM
  room rename ROOM NAME | delete ROOM

Messages and files (ROOM is a room id or the name of one of my rooms)
  send ROOM|@user TEXT...     seal and send a message
  history ROOM|@user [--limit N]
  listen                      live messages, typing and read receipts (Ctrl-C ends)
  upload ROOM|@user FILE [--type MIME]
  download DOCUMENT_ID [-o FILE]

Common flags
  --server URL                server (or QCHAT_SERVER; default http://localhost:8080)
  --json                      machine-readable output, one JSON value per line
  --password-file F           password (or QCHAT_PASSWORD; else a prompt)
  --passphrase-file F         key store passphrase (or QCHAT_PASSPHRASE; else a prompt)

Files live in $QCHAT_CONFIG_DIR, by default the qchat directory of the user
config dir. Tokens, passwords and secret keys are never printed.
`

// app is one invocation: the environment and streams run was given, the
// parsed common flags, and the state loaded from the config dir.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string

	dir            string // config dir
	serverFlag     string
	json           bool
	passwordFile   string
	passphraseFile string
	passphrase     []byte // cached after the first prompt or file read
}

// run is the whole program: args without the program name, the environment
// through getenv.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) error {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv}
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usageErr("no command")
	}
	dir, err := a.configDir()
	if err != nil {
		return err
	}
	a.dir = dir
	cmd, args := args[0], args[1:]
	if cmd == "room" {
		if len(args) == 0 {
			return usageErr("room needs a subcommand: create, join, members, add, remove, leave, rename or delete")
		}
		cmd, args = "room "+args[0], args[1:]
	}
	h, ok := a.commands()[cmd]
	if !ok {
		if cmd == "help" || cmd == "-h" || cmd == "--help" {
			fmt.Fprint(stdout, usage)
			return nil
		}
		return usageErr("unknown command %q (see qchat help)", cmd)
	}
	return h(ctx, args)
}

type handler func(ctx context.Context, args []string) error

func (a *app) commands() map[string]handler {
	return map[string]handler{
		"keygen":       a.keygen,
		"register":     a.register,
		"login":        a.login,
		"logout":       a.logout,
		"fingerprint":  a.fingerprint,
		"rotate-key":   a.rotateKey,
		"rooms":        a.rooms,
		"room create":  a.roomCreate,
		"room join":    a.roomJoin,
		"room members": a.roomMembers,
		"room add":     a.roomAdd,
		"room remove":  a.roomRemove,
		"room leave":   a.roomLeave,
		"room rename":  a.roomRename,
		"room delete":  a.roomDelete,
		"send":         a.send,
		"history":      a.history,
		"listen":       a.listen,
		"upload":       a.upload,
		"download":     a.download,
	}
}

func (a *app) configDir() (string, error) {
	if d := a.getenv("QCHAT_CONFIG_DIR"); d != "" {
		return d, nil
	}
	d, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("no config dir (set QCHAT_CONFIG_DIR): %w", err)
	}
	return filepath.Join(d, "qchat"), nil
}

// flags makes a command's flag set with the common flags on it.
func (a *app) flags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("qchat "+name, flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	fs.StringVar(&a.serverFlag, "server", "", "server URL (or QCHAT_SERVER)")
	fs.BoolVar(&a.json, "json", false, "machine-readable output")
	fs.StringVar(&a.passwordFile, "password-file", "", "read the password from this file")
	fs.StringVar(&a.passphraseFile, "passphrase-file", "", "read the key store passphrase from this file")
	return fs
}

// parse parses flags anywhere among the arguments ("send lab hi --json" as
// well as "send --json lab hi"); everything after "--" is positional, so a
// message may start with a dash. There must be min to max positional
// arguments (max -1: no limit).
func parse(fs *flag.FlagSet, args []string, min, max int, what string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, usageErr("%s %s", fs.Name(), what)
			}
			return nil, fmt.Errorf("%w: %v", errUsage, err)
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	if len(pos) < min || (max >= 0 && len(pos) > max) {
		return nil, usageErr("%s %s", fs.Name(), what)
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
	return client.New(a.serverURL(s))
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
		return nil, nil, fmt.Errorf("not logged in to %s (run qchat login USERNAME)", url)
	}
	c, err := client.New(url, client.WithToken(s.Token))
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
		return nil, fmt.Errorf("no key in %s (run qchat keygen)", filepath.Join(a.dir, keysFile))
	}
	return &ks, nil
}

func (a *app) keyring() (client.Keyring, error) {
	ks, err := a.loadKeys()
	if err != nil {
		return nil, err
	}
	return ks.keyring(a.getPassphrase)
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
	line, err := bufio.NewReader(a.stdin).ReadString('\n')
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
// the name of one of my rooms.
func (a *app) conversation(ctx context.Context, c *client.Client, arg string) (client.Conversation, string, error) {
	if name, ok := strings.CutPrefix(arg, "@"); ok {
		u, err := c.UserByUsername(ctx, name)
		if err != nil {
			return client.Conversation{}, "", err
		}
		return client.WithUser(u.Id), "@" + u.Username, nil
	}
	rooms, err := c.MyRooms(ctx)
	if err != nil {
		return client.Conversation{}, "", err
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
		return client.Conversation{}, "", fmt.Errorf("no room %q among my rooms (see qchat rooms)", arg)
	case 1:
		return client.InRoom(byName[0].Id), byName[0].Name, nil
	}
	ids := make([]string, len(byName))
	for i, r := range byName {
		ids[i] = r.Id
	}
	sort.Strings(ids)
	return client.Conversation{}, "", fmt.Errorf("%d rooms are called %q; use an id: %s", len(byName), arg, strings.Join(ids, ", "))
}

func (a *app) userID(ctx context.Context, c *client.Client, arg string) (string, string, error) {
	u, err := c.UserByUsername(ctx, strings.TrimPrefix(arg, "@"))
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
