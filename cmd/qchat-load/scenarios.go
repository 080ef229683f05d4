package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/qchat/qchat/client"
)

// runMe: { me { id } } over HTTP keep-alive from --concurrency workers, the
// fixed cost of an authenticated request.
func runMe(ctx context.Context, c *cluster) (*result, error) {
	o := c.o
	res := &result{Name: "me", Unit: "requests"}
	setup := time.Now()
	n := o.Users
	if n == 0 {
		n = o.Concurrency
	}
	users, err := c.registerUsers(ctx, n)
	if err != nil {
		return res, err
	}
	res.Setup = setupInfo{Users: n, Concurrency: o.Concurrency, Seconds: round3(time.Since(setup).Seconds())}

	return closedLoop(ctx, c, res, func(i int) func(context.Context) error {
		u, base := users[i%len(users)], c.urls[i%len(c.urls)]
		return func(ctx context.Context) error { return c.postMe(ctx, base, u.api.Token()) }
	})
}

// closedLoop runs --concurrency workers, each calling its op (made by
// newOp) again and again until the window ends (or, with --requests, until
// that many measured calls were made), and fills res with what the measured
// part saw: the calls that succeeded, their latency, errors by code and the
// server's CPU and memory.
func closedLoop(ctx context.Context, c *cluster, res *result, newOp func(worker int) func(context.Context) error) (*result, error) {
	o := c.o
	errs := newErrorCounts(c)
	var lat recorder
	var ok, issued atomic.Int64
	s := startSampler(c.pids, c.o.DBPIDs)
	w := o.window()
	var wg sync.WaitGroup
	for i := range o.Concurrency {
		op := newOp(i)
		wg.Go(func() {
			for ctx.Err() == nil && !w.over() {
				t0 := time.Now()
				if o.counted() && w.measured(t0) && issued.Add(1) > int64(o.Requests) {
					return
				}
				err := op(ctx)
				d := time.Since(t0)
				switch {
				case !w.measured(t0):
				case err != nil:
					if ctx.Err() == nil {
						errs.add(err)
					}
				default:
					lat.add(d)
					ok.Add(1)
				}
			}
		})
	}
	waitUntil(w.from, ctx.Done())
	s.begin()
	if o.counted() {
		wg.Wait()
	} else {
		waitUntil(w.to, ctx.Done())
	}
	s.end()
	wg.Wait()
	res.Usage = s.finish()
	res.Seconds = o.duration().Seconds()
	if o.counted() {
		res.Seconds = time.Since(w.from).Seconds()
	}
	res.OK = ok.Load()
	res.PerSecond = round1(float64(res.OK) / res.Seconds)
	res.Latency = lat.summary()
	res.Errors, res.ErrorCount = errs.snapshot()
	return res, ctx.Err()
}

var meQuery = []byte(`{"query":"{ me { id } }"}`)

// postMe sends the cheapest authenticated query by hand: the SDK's Me asks
// for the whole user with its key, which is not the fixed cost.
func (c *cluster) postMe(ctx context.Context, base, token string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/graphql", bytes.NewReader(meQuery))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	var body struct {
		Data struct {
			Me *struct {
				ID string `json:"id"`
			} `json:"me"`
		} `json:"data"`
		Errors []struct {
			Message    string         `json:"message"`
			Extensions map[string]any `json:"extensions"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		return &client.Error{Message: fmt.Sprintf("HTTP %d: %.100q", resp.StatusCode, raw), Status: resp.StatusCode}
	}
	if len(body.Errors) > 0 {
		e := &client.Error{Message: body.Errors[0].Message, Extensions: body.Errors[0].Extensions, Status: resp.StatusCode}
		e.Code, _ = e.Extensions["code"].(string)
		return e
	}
	if resp.StatusCode != http.StatusOK {
		return &client.Error{Message: resp.Status, Status: resp.StatusCode}
	}
	if body.Data.Me == nil || body.Data.Me.ID == "" {
		return &client.Error{Code: client.CodeUnauthenticated, Message: "me is null"}
	}
	return nil
}

// runDM: --senders pairs of users, each pair's first user sending direct
// messages to the second; both have a socket subscribed to messageAdded
// (a sender receives its own message too).
func runDM(ctx context.Context, c *cluster) (*result, error) {
	o := c.o
	res := &result{Name: "dm"}
	k := o.senders()
	setup := time.Now()
	users, err := c.registerUsers(ctx, 2*k)
	if err != nil {
		return res, err
	}
	convs := make([]*conversation, k)
	senders := make([]*sender, k)
	for i := range k {
		convs[i] = &conversation{conv: client.WithUser(users[2*i+1].id), first: users[2*i], receivers: 2}
		senders[i] = &sender{u: users[2*i], conv: convs[i]}
	}
	return runTraffic(ctx, c, res, setup, users, convs, senders, func(*user) string { return "" })
}

// runRoom: --rooms rooms of --room-size members, every member subscribed to
// its room, --senders posting.
func runRoom(ctx context.Context, c *cluster) (*result, error) {
	sizes := make([]int, c.o.Rooms)
	for i := range sizes {
		sizes[i] = c.o.RoomSize
	}
	return runRooms(ctx, c, &result{Name: "room"}, sizes)
}

// runFanout: --subscribers sockets spread over --rooms rooms (every
// subscriber a member), --senders posting at --rate.
func runFanout(ctx context.Context, c *cluster) (*result, error) {
	o := c.o
	sizes := make([]int, o.Rooms)
	for i := range sizes {
		sizes[i] = o.Subscribers / o.Rooms
		if i < o.Subscribers%o.Rooms {
			sizes[i]++
		}
	}
	if sizes[0] > 1000 {
		return nil, fmt.Errorf("fanout: %d subscribers per room; a room holds at most 1000 (raise --rooms)", sizes[0])
	}
	return runRooms(ctx, c, &result{Name: "fanout"}, sizes)
}

func runRooms(ctx context.Context, c *cluster, res *result, sizes []int) (*result, error) {
	total := 0
	for _, n := range sizes {
		total += n
	}
	setup := time.Now()
	users, err := c.registerUsers(ctx, total)
	if err != nil {
		return res, err
	}
	convs := make([]*conversation, len(sizes))
	members := make([][]*user, len(sizes))
	roomOf := make(map[*user]string, total)
	off := 0
	for i, n := range sizes {
		members[i] = users[off : off+n]
		off += n
	}
	err = parallel(ctx, len(sizes), 8, func(ctx context.Context, i int) error {
		id, err := c.createRoom(ctx, fmt.Sprintf("load %s %s %d", c.runID, res.Name, i), members[i])
		convs[i] = &conversation{conv: client.InRoom(id), first: members[i][0], receivers: len(members[i])}
		return err
	})
	if err != nil {
		return res, err
	}
	for i, ms := range members {
		for _, u := range ms {
			roomOf[u] = convs[i].conv.RoomID
		}
	}
	senders := make([]*sender, c.o.senders())
	for k := range senders {
		r := k % len(convs)
		senders[k] = &sender{u: members[r][(k/len(convs))%len(members[r])], conv: convs[r]}
	}
	res.Setup.Rooms = len(sizes)
	return runTraffic(ctx, c, res, setup, users, convs, senders, func(u *user) string { return roomOf[u] })
}

// runTraffic is the common part of dm, room and fanout once the users and
// conversations exist.
func runTraffic(ctx context.Context, c *cluster, res *result, setup time.Time, users []*user, convs []*conversation, senders []*sender, roomOf func(*user) string) (*result, error) {
	ctx, cancel := context.WithCancel(ctx) // closes the sockets at the end
	defer cancel()
	t := newTraffic(c)
	if err := fetchRecipients(ctx, convs, 16); err != nil {
		return res, fmt.Errorf("fetch recipients: %w", err)
	}
	c.logf("%s: %d users, %d conversations; opening %d sockets", res.Name, len(users), len(convs), len(users))
	if err := t.subscribeAll(ctx, users, roomOf, convs); err != nil {
		return res, err
	}
	if err := t.connectSenders(ctx, senders); err != nil {
		return res, err
	}
	res.Setup.Users, res.Setup.Sockets, res.Setup.Senders = len(users), len(users), len(senders)
	res.Setup.Seconds = round3(time.Since(setup).Seconds())
	seal, err := t.preseal(ctx, senders)
	res.Seal = seal
	if err != nil {
		return res, err
	}
	if c.o.counted() {
		c.logf("%s: sending %d messages (+%s warm-up)", res.Name, c.o.Requests, c.o.warmup())
	} else {
		c.logf("%s: sending for %s (+%s warm-up)", res.Name, c.o.duration(), c.o.warmup())
	}
	s := startSampler(c.pids, c.o.DBPIDs)
	t.send(ctx, senders, s)
	res.Usage = s.finish()
	t.fill(res)
	return res, ctx.Err()
}

// runHistory seeds a room with --history-messages messages among
// --history-filler messages of other rooms (through the API), then has
// --concurrency members page through it with room.messages(first: 50).
// With --history-state the seed is saved after seeding, or, when the file
// exists, reused without seeding: at ~1,300 messages/s a 1,000,000-message
// table takes minutes to seed and seconds to measure.
func runHistory(ctx context.Context, c *cluster) (*result, error) {
	res := &result{Name: "history", Unit: "pages"}
	setup := time.Now()
	path := c.o.HistoryState
	var save *stateWriter
	if path != "" {
		st, err := readHistoryState(path)
		if err == nil {
			return reuseHistory(ctx, c, res, setup, path, st)
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return res, err
		}
		if save, err = createHistoryState(path); err != nil {
			return res, err
		}
		defer save.abort()
	}
	room, members, err := seedHistory(ctx, c, res, setup)
	if err != nil {
		return res, err
	}
	// Saved before measuring, so that an interrupted measurement keeps the
	// seed; a failed save still measures, then fails the scenario.
	var saveErr error
	if save != nil {
		if saveErr = c.saveHistory(save, res.Seed, room, members); saveErr == nil {
			res.Seed.State = path
			c.logf("history: seed saved to %s; --history-state %s reuses it", path, path)
		}
	}
	res, err = measureHistory(ctx, c, res, room, members)
	return res, errors.Join(err, saveErr)
}

// seedHistory registers the room's members and one filler user, creates
// the history room and the filler rooms, and seeds them.
func seedHistory(ctx context.Context, c *cluster, res *result, setup time.Time) (client.Conversation, []*user, error) {
	o := c.o
	users, err := c.registerUsers(ctx, o.RoomSize+1)
	if err != nil {
		return client.Conversation{}, nil, err
	}
	members, filler := users[:o.RoomSize], users[o.RoomSize]
	const fillerRooms = 10
	convs := make([]*conversation, 1+fillerRooms)
	err = parallel(ctx, len(convs), 4, func(ctx context.Context, i int) error {
		ms, name := members, fmt.Sprintf("load %s history", c.runID)
		if i > 0 {
			ms, name = []*user{filler}, fmt.Sprintf("load %s filler %d", c.runID, i)
		}
		id, err := c.createRoom(ctx, name, ms)
		convs[i] = &conversation{conv: client.InRoom(id), first: ms[0]}
		return err
	})
	if err != nil {
		return client.Conversation{}, nil, err
	}
	if err := fetchRecipients(ctx, convs, 4); err != nil {
		return client.Conversation{}, nil, fmt.Errorf("fetch recipients: %w", err)
	}
	seed, err := c.seed(ctx, convs, members, filler)
	res.Seed = seed
	if err != nil {
		return client.Conversation{}, nil, err
	}
	res.Setup = setupInfo{Users: len(users), Rooms: len(convs), Concurrency: o.Concurrency, Seconds: round3(time.Since(setup).Seconds())}
	return convs[0].conv, members, nil
}

// saveHistory commits the state file, but only for a complete seed: the
// seed tolerates a few failed posts, and a saved room with fewer messages
// than the file says would mislead every later run.
func (c *cluster) saveHistory(w *stateWriter, seed *seedInfo, room client.Conversation, members []*user) error {
	if want := int64(seed.Messages + seed.Filler); seed.Posted != want {
		return fmt.Errorf("--history-state %s: not written, seeding posted %d of %d messages", w.path, seed.Posted, want)
	}
	st := &historyState{
		Version: historyStateVersion, Created: time.Now().UTC(), RunID: c.runID,
		RoomID: room.RoomID, Messages: seed.Messages, Filler: seed.Filler,
		Members: make([]credential, len(members)),
	}
	for i, u := range members {
		st.Members[i] = credential{Username: u.name, Password: c.password()}
	}
	return w.commit(st)
}

// reuseHistory logs the saved members in and measures the saved room;
// nothing is registered or posted.
func reuseHistory(ctx context.Context, c *cluster, res *result, setup time.Time, path string, st *historyState) (*result, error) {
	c.logf("history: reusing the seed in %s (run %s, %s): %d messages among %d filler; logging %d members in",
		path, st.RunID, st.Created.Format(time.RFC3339), st.Messages, st.Filler, len(st.Members))
	res.Seed = &seedInfo{Messages: st.Messages, Filler: st.Filler, Reused: true, State: path}
	members, err := c.loginUsers(ctx, st.Members)
	if err != nil {
		return res, fmt.Errorf("--history-state %s: %w", path, err)
	}
	room := client.InRoom(st.RoomID)
	// One page first: a room that is gone or empty (another database) is
	// the file's fault, not a measurement full of errors.
	p, err := members[0].api.MessagePage(ctx, room, 1, "")
	if err == nil && len(p.Edges) == 0 {
		err = errors.New("no messages")
	}
	if err != nil {
		return res, fmt.Errorf("--history-state %s: room %s: %w", path, st.RoomID, err)
	}
	res.Setup = setupInfo{Users: len(members), Rooms: 1, Concurrency: c.o.Concurrency, Seconds: round3(time.Since(setup).Seconds())}
	res.Notes = append(res.Notes, fmt.Sprintf("seeded %s by run %s; --room-size, --history-messages and --history-filler ignored",
		st.Created.Format(time.RFC3339), st.RunID))
	return measureHistory(ctx, c, res, room, members)
}

// measureHistory has --concurrency members page through room with
// room.messages(first: 50), each from the newest message to the oldest and
// over again, and fills in res.
func measureHistory(ctx context.Context, c *cluster, res *result, room client.Conversation, members []*user) (*result, error) {
	var short atomic.Int64
	res, err := closedLoop(ctx, c, res, func(i int) func(context.Context) error {
		u := members[i%len(members)]
		after := ""
		return func(ctx context.Context) error {
			p, err := u.api.MessagePage(ctx, room, 50, after)
			after = ""
			if err != nil {
				return err
			}
			if p.PageInfo.HasNextPage && len(p.Edges) < 50 {
				short.Add(1)
			}
			if p.PageInfo.HasNextPage && p.PageInfo.EndCursor != nil {
				after = *p.PageInfo.EndCursor
			}
			return nil
		}
	})
	if n := short.Load(); n > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("%d pages had fewer than 50 messages but claimed a next page", n))
	}
	return res, err
}

// seed posts the history messages, spread evenly among the filler, sealing
// in GOMAXPROCS workers and posting from --concurrency workers (at least 8).
func (c *cluster) seed(ctx context.Context, convs []*conversation, members []*user, filler *user) (*seedInfo, error) {
	o := c.o
	n, f := o.HistoryMessages, o.HistoryFiller
	total := n + f
	info := &seedInfo{Messages: n, Filler: f}
	c.logf("history: seeding %d messages among %d filler through the API", n, f)
	type job struct {
		conv *conversation
		u    *user
		p    prepared
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	jobs := make(chan job, 256)
	var next atomic.Int64
	var sealers sync.WaitGroup
	start := time.Now()
	for range runtime.GOMAXPROCS(0) {
		sealers.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= total {
					return
				}
				// Message i belongs to the room when the running share of
				// room messages steps up: n of them, evenly spread.
				conv, u := convs[1+i%(len(convs)-1)], filler
				if (i+1)*n/total > i*n/total {
					conv, u = convs[0], members[i%len(members)]
				}
				p, err := seal(u, conv)
				if err != nil {
					cancel(err)
					return
				}
				select {
				case jobs <- job{conv, u, p}:
				case <-ctx.Done():
					return
				}
			}
		})
	}
	go func() { sealers.Wait(); close(jobs) }()
	var posted, failed atomic.Int64
	errs := newErrorCounts(c)
	var posters sync.WaitGroup
	for range max(o.Concurrency, 8) {
		posters.Go(func() {
			for j := range jobs {
				if _, err := j.u.api.SendMessageRaw(ctx, j.conv.input(j.p)); err != nil {
					if ctx.Err() != nil {
						return
					}
					errs.add(err)
					if failed.Add(1) > int64(total/100+10) {
						cancel(fmt.Errorf("seeding: too many errors, last: %w", err))
					}
					continue
				}
				if d := posted.Add(1); d%20000 == 0 {
					c.logf("history: seeded %d of %d (%.0f/s)", d, total, float64(d)/time.Since(start).Seconds())
				}
			}
		})
	}
	posters.Wait()
	info.Seconds = round3(time.Since(start).Seconds())
	info.Posted = posted.Load()
	info.Errors, _ = errs.snapshot()
	if info.Seconds > 0 {
		info.PerSecond = round1(float64(info.Posted) / info.Seconds)
	}
	c.logf("history: seeded %d messages in %.1fs (%.0f/s)", info.Posted, info.Seconds, info.PerSecond)
	if err := context.Cause(ctx); err != nil {
		return info, err
	}
	return info, nil
}
