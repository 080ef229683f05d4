package main

import (
	"context"
	"errors"
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
	if _, err := a.start(ctx, a.flags("rooms"), args, spec{signIn: true, about: "Lists my conversations, rooms and direct, newest activity first, with unread counts."}); err != nil {
		return err
	}
	convs, err := a.client.AllConversations(ctx)
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
	pos, err := a.start(ctx, fs, args, spec{args: "NAME", min: 1, max: 1, signIn: true,
		about: "Creates a room and prints its invite code; others join with qchat room join CODE."})
	if err != nil {
		return err
	}
	r, err := a.client.CreateRoom(ctx, pos[0], !*direct)
	if err != nil {
		return fail(err, "cannot create the room %s", pos[0])
	}
	return a.out(roomJSON(r), "created room %s\ninvite code: %s (others join with: qchat room join %s)\n", r.Name, r.Code, r.Code)
}

func (a *app) roomJoin(ctx context.Context, args []string) error {
	pos, err := a.start(ctx, a.flags("room join"), args, spec{args: "CODE", min: 1, max: 1, signIn: true,
		about: "Joins a room by the invite code its owner shared."})
	if err != nil {
		return err
	}
	code := pos[0]
	r, err := a.client.JoinRoom(ctx, code)
	switch {
	case client.HasCode(err, client.CodeNotFound), client.HasCode(err, client.CodeBadUserInput):
		return &failure{msg: fmt.Sprintf("no room has the invite code %s: check it with whoever shared it", code), code: errCode(err), cause: err}
	case err != nil:
		return fail(err, "cannot join the room with code %s", code)
	}
	return a.out(roomJSON(r), "joined %s, %d members\n", r.Name, r.MemberCount)
}

func (a *app) roomMembers(ctx context.Context, args []string) error {
	c, _, conv, title, err := a.roomTarget(ctx, a.flags("room members"), args, spec{args: "ROOM", min: 1, max: 1,
		about: "Lists a room's members with their key fingerprints and whether you verified them (qchat verify)."})
	if err != nil {
		return err
	}
	ms, err := c.RoomMembers(ctx, conv.RoomID)
	if err != nil {
		return fail(err, "cannot list the members of %s", title)
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	if !a.json {
		fmt.Fprintln(tw, "USER\tROLE\tONLINE\tKEY FINGERPRINT\tIDENTITY")
	}
	for _, m := range ms {
		fp, alg := "(no key)", ""
		if k := m.User.PublicKey; k != nil {
			if pub, err := pqcrypto.DecodeB64(k.Key); err == nil {
				fp, alg = pqcrypto.Fingerprint(pub), string(k.Algorithm)
			}
		}
		trust := a.trustState(&m.User)
		if a.json {
			if err := a.out(map[string]any{"user": userJSON(m.User.Id, m.User.Username), "role": m.Role, "online": m.User.Online,
				"algorithm": alg, "fingerprint": fp, "joinedAt": m.JoinedAt, "identity": trust}, ""); err != nil {
				return err
			}
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%v\t%s\t%s\n", m.User.Username, strings.ToLower(string(m.Role)), m.User.Online, fp, trust)
	}
	return tw.Flush()
}

// roomUserOp is room add and room remove: ROOM @user.
func (a *app) roomUserOp(ctx context.Context, args []string, name, verb, about string, op func(*client.Client, context.Context, string, string) (*client.Room, error)) error {
	c, pos, conv, title, err := a.roomTarget(ctx, a.flags(name), args, spec{args: "ROOM @user", min: 2, max: 2, about: about})
	if err != nil {
		return err
	}
	uid, uname, err := a.userID(ctx, c, pos[1])
	if err != nil {
		return err
	}
	r, err := op(c, ctx, conv.RoomID, uid)
	if err != nil {
		return fail(err, "cannot %s %s in %s", strings.TrimPrefix(name, "room "), uname, title)
	}
	return a.out(roomJSON(r), "%s %s: %s now has %d members\n", verb, uname, r.Name, r.MemberCount)
}

func (a *app) roomAdd(ctx context.Context, args []string) error {
	return a.roomUserOp(ctx, args, "room add", "added", "Adds someone to a room (owner or admin).", (*client.Client).AddRoomMember)
}

func (a *app) roomRemove(ctx context.Context, args []string) error {
	return a.roomUserOp(ctx, args, "room remove", "removed", "Removes someone from a room (owner or admin, or yourself).", (*client.Client).RemoveRoomMember)
}

// roomSimple is room leave and room delete: ROOM only, a Boolean result.
func (a *app) roomSimple(ctx context.Context, args []string, name, verb, about string, op func(*client.Client, context.Context, string) error) error {
	c, _, conv, title, err := a.roomTarget(ctx, a.flags(name), args, spec{args: "ROOM", min: 1, max: 1, about: about})
	if err != nil {
		return err
	}
	if err := op(c, ctx, conv.RoomID); err != nil {
		return fail(err, "cannot %s %s", strings.TrimPrefix(name, "room "), title)
	}
	return a.out(map[string]any{"id": conv.RoomID, "name": title, verb: true}, "%s %s\n", verb, title)
}

func (a *app) roomLeave(ctx context.Context, args []string) error {
	return a.roomSimple(ctx, args, "room leave", "left", "Leaves a room.", (*client.Client).LeaveRoom)
}

func (a *app) roomDelete(ctx context.Context, args []string) error {
	return a.roomSimple(ctx, args, "room delete", "deleted", "Deletes a room and its messages (owner).", (*client.Client).DeleteRoom)
}

func (a *app) roomRename(ctx context.Context, args []string) error {
	c, pos, conv, title, err := a.roomTarget(ctx, a.flags("room rename"), args, spec{args: "ROOM NAME", min: 2, max: 2, about: "Renames a room (owner)."})
	if err != nil {
		return err
	}
	r, err := c.RenameRoom(ctx, conv.RoomID, pos[1])
	if err != nil {
		return fail(err, "cannot rename %s", title)
	}
	return a.out(roomJSON(r), "renamed %s to %s\n", title, r.Name)
}

// roomTarget is the start of the room subcommands that act on one of my
// rooms: it signs in and resolves the first argument to the room.
func (a *app) roomTarget(ctx context.Context, fs *flag.FlagSet, args []string, sp spec) (*client.Client, []string, client.Conversation, string, error) {
	sp.signIn = true
	pos, err := a.start(ctx, fs, args, sp)
	if err != nil {
		return nil, nil, client.Conversation{}, "", err
	}
	if strings.HasPrefix(pos[0], "@") {
		return nil, nil, client.Conversation{}, "", usageErr("%s takes a room, not a person: %s %s", fs.Name(), fs.Name(), sp.args)
	}
	conv, title, err := a.conversation(ctx, a.client, pos[0])
	if err != nil {
		return nil, nil, client.Conversation{}, "", err
	}
	return a.client, pos, conv, title, nil
}

// errCode is the server's code in err, if any.
func errCode(err error) string {
	var ce *client.Error
	if errors.As(err, &ce) {
		return ce.Code
	}
	return ""
}
