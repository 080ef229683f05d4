package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/qchat/qchat/client"
	"github.com/qchat/qchat/pqcrypto"
)

func trimAt(s string) string { return strings.TrimPrefix(s, "@") }

func roomJSON(r *client.Room) map[string]any {
	return map[string]any{"id": r.Id, "name": r.Name, "isGroup": r.IsGroup, "code": r.Code,
		"memberCount": r.MemberCount, "role": r.MyRole, "createdAt": r.CreatedAt}
}

// conversationJSON is one line of `rooms --json`: a room (roomJSON's
// fields) or a direct conversation, with its unread count and last activity.
func conversationJSON(cv *client.ConversationSummary) map[string]any {
	out := map[string]any{"kind": "direct"}
	if cv.Room != nil {
		out = roomJSON(cv.Room)
		out["kind"] = "room"
	} else if cv.User != nil {
		out["userId"], out["username"] = cv.User.Id, cv.User.Username
	}
	out["unread"], out["lastActivityAt"] = cv.UnreadCount, cv.LastActivityAt
	return out
}

// rooms lists every conversation, rooms and direct ones, most recent
// activity first, with unread counts.
func (a *app) rooms(ctx context.Context, args []string) error {
	fs := a.flags("rooms")
	if _, err := parse(fs, args, 0, 0, ""); err != nil {
		return err
	}
	c, _, err := a.authed()
	if err != nil {
		return err
	}
	convs, err := c.AllConversations(ctx)
	if err != nil {
		return err
	}
	if a.json {
		for i := range convs {
			if err := a.out(conversationJSON(&convs[i]), ""); err != nil {
				return err
			}
		}
		return nil
	}
	if len(convs) == 0 {
		fmt.Fprintln(a.stdout, "no conversations yet: qchat room create NAME, qchat room join CODE, or qchat send @user TEXT")
		return nil
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tUNREAD\tMEMBERS\tROLE\tCODE\tID")
	for _, cv := range convs {
		switch {
		case cv.Room != nil:
			r := cv.Room
			fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\n", r.Name, cv.UnreadCount, r.MemberCount, strings.ToLower(string(r.MyRole)), r.Code, r.Id)
		case cv.User != nil:
			fmt.Fprintf(tw, "@%s\t%d\t2\tdirect\t-\t%s\n", cv.User.Username, cv.UnreadCount, cv.User.Id)
		}
	}
	return tw.Flush()
}

func (a *app) roomCreate(ctx context.Context, args []string) error {
	fs := a.flags("room create")
	direct := fs.Bool("direct", false, "a two-person room rather than a group")
	pos, err := parse(fs, args, 1, 1, "NAME [--direct]")
	if err != nil {
		return err
	}
	c, _, err := a.authed()
	if err != nil {
		return err
	}
	r, err := c.CreateRoom(ctx, pos[0], !*direct)
	if err != nil {
		return fmt.Errorf("create room: %w", err)
	}
	return a.out(roomJSON(r), "created room %s (%s)\ninvite code: %s\n", r.Name, r.Id, r.Code)
}

func (a *app) roomJoin(ctx context.Context, args []string) error {
	fs := a.flags("room join")
	pos, err := parse(fs, args, 1, 1, "CODE")
	if err != nil {
		return err
	}
	c, _, err := a.authed()
	if err != nil {
		return err
	}
	r, err := c.JoinRoom(ctx, pos[0])
	if err != nil {
		return fmt.Errorf("join room: %w", err)
	}
	return a.out(roomJSON(r), "joined %s (%s), %d members\n", r.Name, r.Id, r.MemberCount)
}

func (a *app) roomMembers(ctx context.Context, args []string) error {
	c, _, conv, _, err := a.roomTarget(ctx, a.flags("room members"), args, 1, 1, "ROOM", "room members takes a room, not a user")
	if err != nil {
		return err
	}
	ms, err := c.RoomMembers(ctx, conv.RoomID)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	if !a.json {
		fmt.Fprintln(tw, "USER\tROLE\tONLINE\tKEY FINGERPRINT")
	}
	for _, m := range ms {
		fp, alg := "(no key)", ""
		if k := m.User.PublicKey; k != nil {
			if pub, err := pqcrypto.DecodeB64(k.Key); err == nil {
				fp, alg = pqcrypto.Fingerprint(pub), string(k.Algorithm)
			}
		}
		if a.json {
			if err := a.out(map[string]any{"user": userJSON(m.User.Id, m.User.Username), "role": m.Role, "online": m.User.Online,
				"algorithm": alg, "fingerprint": fp, "joinedAt": m.JoinedAt}, ""); err != nil {
				return err
			}
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%v\t%s\n", m.User.Username, strings.ToLower(string(m.Role)), m.User.Online, fp)
	}
	return tw.Flush()
}

// roomUserOp is room add and room remove: ROOM @user.
func (a *app) roomUserOp(ctx context.Context, args []string, name, verb string, op func(*client.Client, context.Context, string, string) (*client.Room, error)) error {
	c, pos, conv, _, err := a.roomTarget(ctx, a.flags(name), args, 2, 2, "ROOM @user", name+" takes a room first")
	if err != nil {
		return err
	}
	uid, uname, err := a.userID(ctx, c, pos[1])
	if err != nil {
		return err
	}
	r, err := op(c, ctx, conv.RoomID, uid)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return a.out(roomJSON(r), "%s %s: %s now has %d members\n", verb, uname, r.Name, r.MemberCount)
}

func (a *app) roomAdd(ctx context.Context, args []string) error {
	return a.roomUserOp(ctx, args, "room add", "added", (*client.Client).AddRoomMember)
}

func (a *app) roomRemove(ctx context.Context, args []string) error {
	return a.roomUserOp(ctx, args, "room remove", "removed", (*client.Client).RemoveRoomMember)
}

// roomSimple is room leave and room delete: ROOM only, a Boolean result.
func (a *app) roomSimple(ctx context.Context, args []string, name, verb string, op func(*client.Client, context.Context, string) error) error {
	c, _, conv, title, err := a.roomTarget(ctx, a.flags(name), args, 1, 1, "ROOM", name+" takes a room")
	if err != nil {
		return err
	}
	if err := op(c, ctx, conv.RoomID); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return a.out(map[string]any{"id": conv.RoomID, "name": title, verb: true}, "%s %s\n", verb, title)
}

func (a *app) roomLeave(ctx context.Context, args []string) error {
	return a.roomSimple(ctx, args, "room leave", "left", (*client.Client).LeaveRoom)
}

func (a *app) roomDelete(ctx context.Context, args []string) error {
	return a.roomSimple(ctx, args, "room delete", "deleted", (*client.Client).DeleteRoom)
}

func (a *app) roomRename(ctx context.Context, args []string) error {
	c, pos, conv, _, err := a.roomTarget(ctx, a.flags("room rename"), args, 2, 2, "ROOM NAME", "room rename takes a room")
	if err != nil {
		return err
	}
	r, err := c.RenameRoom(ctx, conv.RoomID, pos[1])
	if err != nil {
		return fmt.Errorf("room rename: %w", err)
	}
	return a.out(roomJSON(r), "renamed to %s\n", r.Name)
}

// roomTarget parses a room subcommand's flags and arguments, signs in, and
// resolves the first argument to one of my rooms; notRoom is the usage error
// for an argument that names a user instead.
func (a *app) roomTarget(ctx context.Context, fs *flag.FlagSet, args []string, min, max int, usage string,
	notRoom string) (*client.Client, []string, client.Conversation, string, error) {
	pos, err := parse(fs, args, min, max, usage)
	if err != nil {
		return nil, nil, client.Conversation{}, "", err
	}
	c, _, err := a.authed()
	if err != nil {
		return nil, nil, client.Conversation{}, "", err
	}
	conv, title, err := a.conversation(ctx, c, pos[0])
	if err != nil {
		return nil, nil, client.Conversation{}, "", err
	}
	if conv.RoomID == "" {
		return nil, nil, client.Conversation{}, "", usageErr("%s", notRoom)
	}
	return c, pos, conv, title, nil
}
