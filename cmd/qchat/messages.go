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
)

func (a *app) send(ctx context.Context, args []string) error {
	fs := a.flags("send")
	pos, err := parse(fs, args, 2, -1, "ROOM|@user TEXT...")
	if err != nil {
		return err
	}
	c, _, err := a.authed()
	if err != nil {
		return err
	}
	conv, title, err := a.conversation(ctx, c, pos[0])
	if err != nil {
		return err
	}
	m, err := c.SendText(ctx, conv, strings.Join(pos[1:], " "))
	if err != nil {
		return err
	}
	return a.out(map[string]any{"id": m.Id, "roomId": conv.RoomID, "recipientId": conv.UserID, "createdAt": m.CreatedAt},
		"sent to %s (%s)\n", title, m.Id)
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
	if r.Err != nil {
		out["error"] = r.Err.Error()
	} else {
		out["text"] = r.Text()
	}
	if at := r.Attachment; at != nil {
		out["attachment"] = map[string]any{"id": at.Id, "name": at.Name, "mimeType": at.MimeType, "size": at.Size}
	}
	return out
}

func (v *view) messageLine(r *client.Received) string {
	text := r.Text()
	switch {
	case errors.Is(r.Err, client.ErrDeleted):
		text = "(deleted)"
	case r.Err != nil:
		text = "(cannot decrypt: " + r.Err.Error() + ")"
	}
	line := fmt.Sprintf("%s [%s] %s: %s", r.CreatedAt.Local().Format(time.DateTime), v.conversation(&r.Message), r.Sender.Username, text)
	if at := r.Attachment; at != nil {
		line += fmt.Sprintf("  [file %s, %s, %d bytes: qchat download %s]", at.Name, at.MimeType, at.Size, at.Id)
	}
	return line
}

func (a *app) newView(ctx context.Context, c *client.Client, s *session) (*view, error) {
	rooms, err := c.MyRooms(ctx)
	if err != nil {
		return nil, err
	}
	v := &view{rooms: make(map[string]string, len(rooms)), self: s.UserID}
	for _, r := range rooms {
		v.rooms[r.Id] = r.Name
	}
	return v, nil
}

func (a *app) history(ctx context.Context, args []string) error {
	fs := a.flags("history")
	limit := fs.Int("limit", 50, "how many of the newest messages")
	pos, err := parse(fs, args, 1, 1, "ROOM|@user [--limit N]")
	if err != nil {
		return err
	}
	c, s, err := a.authed()
	if err != nil {
		return err
	}
	kr, err := a.keyring()
	if err != nil {
		return err
	}
	conv, _, err := a.conversation(ctx, c, pos[0])
	if err != nil {
		return err
	}
	v, err := a.newView(ctx, c, s)
	if err != nil {
		return err
	}
	var msgs []client.Received
	after := ""
	for len(msgs) < *limit {
		p, err := c.History(ctx, conv, min(*limit-len(msgs), client.DefaultPageSize), after, kr)
		if err != nil {
			return err
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

// listen prints events until ctx ends (Ctrl-C). Messages from others are
// marked read once shown, which is what sends them read receipts; use
// --no-receipts to read silently.
func (a *app) listen(ctx context.Context, args []string) error {
	fs := a.flags("listen")
	noReceipts := fs.Bool("no-receipts", false, "do not mark shown messages read")
	pos, err := parse(fs, args, 0, 1, "[ROOM] [--no-receipts]")
	if err != nil {
		return err
	}
	c, s, err := a.authed()
	if err != nil {
		return err
	}
	kr, err := a.keyring()
	if err != nil {
		return err
	}
	roomID := ""
	if len(pos) == 1 {
		conv, _, err := a.conversation(ctx, c, pos[0])
		if err != nil {
			return err
		}
		if conv.RoomID == "" {
			return usageErr("listen takes a room, or nothing for everything")
		}
		roomID = conv.RoomID
	}
	v, err := a.newView(ctx, c, s)
	if err != nil {
		return err
	}
	events, err := c.Subscribe(ctx, client.MessagesAdded(roomID), client.Typing(roomID), client.ReadReceipts(roomID),
		client.MessagesDeleted(roomID), client.RoomEvents())
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stderr, "listening as %s (Ctrl-C to stop)\n", s.Username)
	for e := range events {
		if err := a.showEvent(ctx, c, v, kr, e, !*noReceipts); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return nil // interrupted: the normal way to stop
	}
	return errors.New("the server ended the subscriptions")
}

func (a *app) showEvent(ctx context.Context, c *client.Client, v *view, kr client.Keyring, e client.Event, receipts bool) error {
	switch e.Kind {
	case client.EventError:
		return e.Err
	case client.EventMessage:
		r := client.Decrypt(e.Message, kr)
		if err := a.out(v.messageJSON(&r), "%s\n", v.messageLine(&r)); err != nil {
			return err
		}
		if receipts && r.Sender.Id != v.self && r.Err == nil {
			if _, err := c.MarkRead(ctx, r.Id); err != nil && ctx.Err() == nil {
				fmt.Fprintf(a.stderr, "warning: mark read: %v\n", err)
			}
		}
	case client.EventTyping:
		t := e.Typing
		if t.User.Id == v.self {
			return nil
		}
		where := "you"
		if t.RoomId != nil {
			where = v.rooms[*t.RoomId]
		}
		state := "stopped typing"
		if t.IsTyping {
			state = "is typing…"
		}
		return a.out(map[string]any{"event": "typing", "from": t.User.Username, "fromId": t.User.Id, "roomId": t.RoomId, "isTyping": t.IsTyping},
			"  %s %s (%s)\n", t.User.Username, state, where)
	case client.EventReadReceipt:
		rr := e.ReadReceipt
		if rr.User.Id == v.self {
			return nil
		}
		return a.out(map[string]any{"event": "receipt", "messageId": rr.MessageId, "by": rr.User.Username, "byId": rr.User.Id, "readAt": rr.ReadAt},
			"  read by %s: %s\n", rr.User.Username, rr.MessageId)
	case client.EventMessageDeleted:
		return a.out(map[string]any{"event": "deleted", "messageId": e.DeletedMessageID}, "  message %s deleted\n", e.DeletedMessageID)
	case client.EventRoom:
		re := e.Room
		v.rooms[re.Room.Id] = re.Room.Name // renames and joins keep names current
		who := ""
		if re.User != nil {
			who = re.User.Username
		}
		return a.out(map[string]any{"event": "room", "type": re.Type, "roomId": re.Room.Id, "room": re.Room.Name, "user": who},
			"  [%s] %s %s\n", re.Room.Name, strings.ToLower(strings.ReplaceAll(string(re.Type), "_", " ")), who)
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

// upload seals and uploads a file, then posts a message with it attached so
// that the others see it arrive (--no-message skips that).
func (a *app) upload(ctx context.Context, args []string) error {
	fs := a.flags("upload")
	typ := fs.String("type", "", "MIME type (default: from the file's extension)")
	text := fs.String("message", "", "text of the message carrying the file (default: its name)")
	noMessage := fs.Bool("no-message", false, "upload without posting a message")
	pos, err := parse(fs, args, 2, 2, "ROOM|@user FILE [--type MIME]")
	if err != nil {
		return err
	}
	data, err := os.ReadFile(pos[1])
	if err != nil {
		return err
	}
	name := filepath.Base(pos[1])
	if *typ == "" {
		*typ = mimeType(name)
	}
	c, _, err := a.authed()
	if err != nil {
		return err
	}
	conv, title, err := a.conversation(ctx, c, pos[0])
	if err != nil {
		return err
	}
	d, err := c.UploadDocument(ctx, conv, name, *typ, data)
	if err != nil {
		return err
	}
	out := map[string]any{"id": d.Id, "name": d.Name, "mimeType": d.MimeType, "size": len(data), "roomId": conv.RoomID, "recipientId": conv.UserID}
	if !*noMessage {
		if *text == "" {
			*text = name
		}
		m, err := c.Send(ctx, conv, []byte(*text), client.SendOptions{AttachmentID: d.Id})
		if err != nil {
			return fmt.Errorf("uploaded %s as %s, but posting it failed: %w", name, d.Id, err)
		}
		out["messageId"] = m.Id
	}
	return a.out(out, "uploaded %s (%s, %d bytes) to %s as document %s\n", name, d.MimeType, len(data), title, d.Id)
}

// download fetches, opens and saves a document: to -o FILE, to stdout with
// -o -, or under its own name in the current directory. Existing files are
// not overwritten without --force.
func (a *app) download(ctx context.Context, args []string) error {
	fs := a.flags("download")
	output := fs.String("o", "", "output file, - for stdout (default: the document's name)")
	force := fs.Bool("force", false, "overwrite an existing file")
	pos, err := parse(fs, args, 1, 1, "DOCUMENT_ID [-o FILE]")
	if err != nil {
		return err
	}
	c, _, err := a.authed()
	if err != nil {
		return err
	}
	kr, err := a.keyring()
	if err != nil {
		return err
	}
	d, data, err := c.DownloadDocument(ctx, pos[0], kr)
	if err != nil {
		return err
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
	if err != nil {
		return fmt.Errorf("save %s: %w", d.Name, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("save %s: %w", d.Name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("save %s: %w", d.Name, err)
	}
	return a.out(map[string]any{"id": d.Id, "name": d.Name, "mimeType": d.MimeType, "file": path, "size": len(data)},
		"saved %s (%s, %d bytes) to %s\n", d.Name, d.MimeType, len(data), path)
}
