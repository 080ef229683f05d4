package main

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/qchat/qchat/client"
	"github.com/qchat/qchat/pqcrypto"
)

func (a *app) send(ctx context.Context, args []string) error {
	pos, err := a.start(ctx, a.flags("send"), args, spec{args: "ROOM|@user TEXT...", min: 2, max: -1, signIn: true, keys: true,
		about: "Seals a message for every member of ROOM (or for you and @user) and sends it.\n" +
			"The words of TEXT are joined with spaces. Text that starts like a flag goes after --:\n" +
			"  qchat send Plans -- --not-a-flag"})
	if err != nil {
		return err
	}
	conv, title, err := a.conversation(ctx, a.client, pos[0])
	if err != nil {
		return err
	}
	m, err := a.client.SendText(ctx, conv, strings.Join(pos[1:], " "))
	if err != nil {
		return a.sealFailure(err, "cannot send to %s", title)
	}
	return a.out(map[string]any{"id": m.Id, "roomId": conv.RoomID, "recipientId": conv.UserID, "createdAt": m.CreatedAt},
		"sent to %s\n", title)
}

// sealFailure explains a send or upload that failed: a changed identity
// key gets its warning, a key that cannot be trusted names its user.
func (a *app) sealFailure(err error, format string, args ...any) error {
	var changed *client.IdentityChangedError
	if errors.As(err, &changed) {
		return a.identityChanged(changed)
	}
	var rejected *client.KeyRejectedError
	if errors.As(err, &rejected) {
		return &failure{msg: fmt.Sprintf(format, args...) + ": " + rejected.Error(), code: "KEY_REJECTED", cause: err}
	}
	return fail(err, format, args...)
}

// view is what history and listen print about a message: resolved names and
// the plaintext or the reason there is none.
type view struct {
	rooms map[string]string // room id → name
	self  string
}

func (v *view) conversation(m *client.Message) string {
	if m.Room != nil {
		if n, ok := v.rooms[m.Room.Id]; ok {
			return n
		}
		return m.Room.Id
	}
	// A direct conversation is named after the other person.
	if m.Sender.Id == v.self && m.Recipient != nil {
		return "@" + m.Recipient.Username
	}
	return "@" + m.Sender.Username
}

func (v *view) messageJSON(r *client.Received) map[string]any {
	out := map[string]any{
		"event": "message", "id": r.Id, "conversation": v.conversation(&r.Message),
		"from": r.Sender.Username, "fromId": r.Sender.Id, "createdAt": r.CreatedAt, "deleted": r.Deleted,
	}
	if r.Room != nil {
		out["roomId"] = r.Room.Id
	}
	if r.Recipient != nil {
		out["recipientId"] = r.Recipient.Id
	}
	// signed: the signature verified against the sender's pinned identity
	// key. A plaintext without it is version 1 content, whose sender only
	// the server vouches for; a signature that fails is unverifiable, and
	// its text is never shown.
	out["signed"] = r.Signed
	switch {
	case errors.Is(r.Err, pqcrypto.ErrCannotOpen):
		out["error"] = r.Err.Error()
		out["unverifiable"] = true
	case r.Err != nil:
		out["error"] = r.Err.Error()
	default:
		out["text"] = r.Text()
	}
	if at := r.Attachment; at != nil {
		out["attachment"] = map[string]any{"id": at.Id, "name": at.Name, "mimeType": at.MimeType, "size": client.FileSize(at.Size)}
	}
	return out
}

func (v *view) messageLine(r *client.Received) string {
	text := r.Text()
	switch {
	case errors.Is(r.Err, client.ErrDeleted):
		text = "(deleted)"
	case errors.Is(r.Err, client.ErrMissingSecretKey):
		text = "(cannot open: sealed for a key this device does not have)"
	case errors.Is(r.Err, client.ErrNoRecipientKey):
		text = "(cannot open: not sealed for you, e.g. sent before you joined)"
	case errors.Is(r.Err, pqcrypto.ErrCannotOpen):
		text = "(unverifiable: cannot open envelope; its signature or content does not check out, so it is not shown)"
	case r.Err != nil:
		text = "(cannot open: " + r.Err.Error() + ")"
	}
	from := r.Sender.Username
	if r.Err == nil && !r.Signed {
		from += " (sender not verified)"
	}
	line := fmt.Sprintf("%s [%s] %s: %s", r.CreatedAt.Local().Format(time.DateTime), v.conversation(&r.Message), from, text)
	if at := r.Attachment; at != nil {
		line += fmt.Sprintf("  [file %s, %s: qchat download %s]", at.Name, humanSize(int64(client.FileSize(at.Size))), at.Id)
	}
	return line
}

// humanSize is a size as people read it: bytes, KiB or MiB.
func humanSize(n int64) string {
	switch {
	case n < 1<<10:
		return fmt.Sprintf("%d bytes", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

func (a *app) newView(ctx context.Context, c *client.Client, s *session) (*view, error) {
	rooms, err := c.MyRooms(ctx)
	if err != nil {
		return nil, fail(err, "cannot list your rooms")
	}
	v := &view{rooms: make(map[string]string, len(rooms)), self: s.UserID}
	for _, r := range rooms {
		v.rooms[r.Id] = r.Name
	}
	return v, nil
}

func (a *app) history(ctx context.Context, args []string) error {
	fs := a.flags("history")
	limit := fs.Int("limit", 50, "how many (`N`) of the newest messages")
	pos, err := a.start(ctx, fs, args, spec{args: "ROOM|@user", min: 1, max: 1, signIn: true, keys: true,
		about: "Shows the newest messages of a room or a direct conversation, oldest first."})
	if err != nil {
		return err
	}
	c := a.client
	conv, title, err := a.conversation(ctx, c, pos[0])
	if err != nil {
		return err
	}
	v, err := a.newView(ctx, c, a.session)
	if err != nil {
		return err
	}
	var msgs []client.Received
	after := ""
	for len(msgs) < *limit {
		p, err := c.History(ctx, conv, min(*limit-len(msgs), client.DefaultPageSize), after, a.ring)
		if err != nil {
			return fail(err, "cannot read the history of %s", title)
		}
		msgs = append(msgs, p.Messages...)
		if !p.HasNextPage {
			break
		}
		after = p.EndCursor
	}
	slices.Reverse(msgs) // oldest first, like a chat window
	for i := range msgs {
		if err := a.out(v.messageJSON(&msgs[i]), "%s\n", v.messageLine(&msgs[i])); err != nil {
			return err
		}
	}
	return nil
}

// mimeTypes are the types the server accepts, by extension: the system's
// MIME tables vary (and add "; charset=..."), the server's list does not.
func mimeType(name string) string {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".jpg", ".jpeg":
		return "image/jpeg"
	case ".png":
		return "image/png"
	case ".gif":
		return "image/gif"
	case ".webp":
		return "image/webp"
	case ".pdf":
		return "application/pdf"
	case ".doc":
		return "application/msword"
	case ".docx":
		return "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
	case ".txt", ".text", ".md", ".log":
		return "text/plain"
	}
	if t, _, err := mime.ParseMediaType(mime.TypeByExtension(filepath.Ext(name))); err == nil {
		return t
	}
	return "application/octet-stream"
}

// checkFile refuses, before any sealing or network, a file the server would
// refuse: too big, or of a type it does not store. It returns the type.
func checkFile(path, typ string, size int64) (string, error) {
	name := filepath.Base(path)
	if size > client.MaxFileSize {
		return "", &failure{msg: fmt.Sprintf("%s is %s; files can be at most %d MiB", name, humanSize(size), client.MaxDocumentSize>>20), code: client.CodeBadUserInput}
	}
	names := make([]string, len(client.AcceptedTypes))
	for i, t := range client.AcceptedTypes {
		names[i] = t.Name
	}
	accepted := strings.Join(names, ", ")
	if typ != "" {
		if !client.Accepted(typ) {
			return "", &failure{msg: fmt.Sprintf("the server does not accept %s files; it accepts %s", typ, accepted), code: client.CodeBadUserInput}
		}
		return typ, nil
	}
	typ = mimeType(name)
	switch {
	case client.Accepted(typ):
		return typ, nil
	case typ == "application/octet-stream":
		return "", &failure{msg: fmt.Sprintf("cannot tell the type of %s from its name; the server accepts %s: if it is one of them, say which with --type (e.g. --type application/pdf)", name, accepted), code: client.CodeBadUserInput}
	}
	return "", &failure{msg: fmt.Sprintf("%s is %s, which the server does not accept; it accepts %s (--type sets the type if the extension is wrong)", name, typ, accepted), code: client.CodeBadUserInput}
}

// upload seals and uploads a file, then posts a message with it attached so
// that the others see it arrive (--no-message skips that).
func (a *app) upload(ctx context.Context, args []string) error {
	fs := a.flags("upload")
	typ := fs.String("type", "", "the file's `MIME` type (default: from its extension)")
	text := fs.String("message", "", "text of the message carrying the file (default: its name)")
	noMessage := fs.Bool("no-message", false, "upload without posting a message")
	pos, err := a.start(ctx, fs, args, spec{args: "ROOM|@user FILE", min: 2, max: 2, signIn: true,
		about: "Seals a file for the conversation's members, uploads it and posts a message with it attached.\n" +
			"Files can be at most 10 MiB, of a type the server accepts (images, PDF, Word, plain text)."})
	if err != nil {
		return err
	}
	path := pos[1]
	name := filepath.Base(path)
	info, err := os.Stat(path)
	if err != nil {
		return &failure{msg: fmt.Sprintf("cannot read %s: %v", path, errors.Unwrap(err)), cause: err}
	}
	if info.IsDir() {
		return &failure{msg: fmt.Sprintf("%s is a directory, not a file", path)}
	}
	if *typ, err = checkFile(path, *typ, info.Size()); err != nil {
		return err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return &failure{msg: fmt.Sprintf("cannot read %s: %v", path, errors.Unwrap(err)), cause: err}
	}
	conv, title, err := a.conversation(ctx, a.client, pos[0])
	if err != nil {
		return err
	}
	// The keys sign the upload; they are unlocked after the checks, so
	// that a file the server would refuse is refused without a passphrase.
	if err := a.unlock(ctx); err != nil {
		return err
	}
	d, err := a.client.UploadDocument(ctx, conv, name, *typ, data)
	if err != nil {
		return a.sealFailure(err, "cannot upload %s to %s", name, title)
	}
	size := humanSize(int64(len(data)))
	out := map[string]any{"id": d.Id, "name": d.Name, "mimeType": d.MimeType, "size": len(data), "roomId": conv.RoomID, "recipientId": conv.UserID}
	if !*noMessage {
		if *text == "" {
			*text = name
		}
		m, err := a.client.Send(ctx, conv, []byte(*text), client.SendOptions{AttachmentID: d.Id})
		if err != nil {
			return fail(err, "uploaded %s, but could not post it to %s (others get it with qchat download %s)", name, title, d.Id)
		}
		out["messageId"] = m.Id
	}
	return a.out(out, "uploaded %s (%s) to %s\nothers get it with: qchat download %s\n", name, size, title, d.Id)
}

// download fetches, opens and saves a document: to -o FILE, to stdout with
// -o -, or under its own name in the current directory. Existing files are
// not overwritten without --force.
func (a *app) download(ctx context.Context, args []string) error {
	fs := a.flags("download")
	output := fs.String("o", "", "save to `FILE`, - for stdout (default: the document's name)")
	force := fs.Bool("force", false, "overwrite an existing file")
	pos, err := a.start(ctx, fs, args, spec{args: "DOCUMENT_ID", min: 1, max: 1, signIn: true, keys: true,
		about: "Fetches a file (its id is in the message that carried it), opens it here and saves it."})
	if err != nil {
		return err
	}
	d, data, signed, err := a.client.DownloadDocument(ctx, pos[0], a.ring)
	if err != nil {
		what := "the file " + pos[0]
		if d != nil {
			what = d.Name
		}
		if client.HasCode(err, client.CodeNotFound) {
			return &failure{msg: fmt.Sprintf("there is no file %s that you can see", pos[0]), code: client.CodeNotFound, cause: err}
		}
		return fail(err, "cannot download %s", what)
	}
	if !signed {
		fmt.Fprintf(a.stderr, "note: %s was uploaded before signatures (version 1): sender not verified\n", d.Name)
	}
	if *output == "-" {
		_, err := a.stdout.Write(data)
		return err
	}
	path := *output
	if path == "" {
		// The name is metadata anyone in the conversation chose: never let
		// it pick a directory.
		path = filepath.Base(filepath.Clean("/" + d.Name))
		if path == "/" || path == "." {
			path = d.Id
		}
	}
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if *force {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(path, flags, 0o600)
	if errors.Is(err, os.ErrExist) {
		return &failure{msg: fmt.Sprintf("%s exists: choose another name with -o FILE, or replace it with --force", path), cause: err}
	}
	if err != nil {
		return fail(err, "cannot save %s", d.Name)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fail(err, "cannot save %s", d.Name)
	}
	if err := f.Close(); err != nil {
		return fail(err, "cannot save %s", d.Name)
	}
	return a.out(map[string]any{"id": d.Id, "name": d.Name, "mimeType": d.MimeType, "file": path, "size": len(data), "signed": signed},
		"saved %s (%s) to %s\n", d.Name, humanSize(int64(len(data))), path)
}
