package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// jsonDuration prints as "10s" in the JSON report rather than nanoseconds.
type jsonDuration time.Duration

func (d jsonDuration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

func (d *jsonDuration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	*d = jsonDuration(v)
	return err
}

// options are the command-line flags; they appear in the JSON report as
// "params".
type options struct {
	Servers         []string     `json:"servers"`
	Scenario        string       `json:"scenario"`
	Users           int          `json:"users"`
	Rooms           int          `json:"rooms"`
	RoomSize        int          `json:"roomSize"`
	Subscribers     int          `json:"subscribers"`
	Senders         int          `json:"senders"`
	Rate            float64      `json:"rate"`
	Duration        jsonDuration `json:"duration"`
	Requests        int          `json:"requests,omitempty"`
	Warmup          jsonDuration `json:"warmup"`
	Drain           jsonDuration `json:"drain"`
	Concurrency     int          `json:"concurrency"`
	HistoryMessages int          `json:"historyMessages"`
	HistoryFiller   int          `json:"historyFiller"`
	HistoryState    string       `json:"historyState,omitempty"`
	Preseal         int          `json:"preseal"`
	PresealBudget   jsonDuration `json:"presealBudget"`
	OpenSample      float64      `json:"openSample"`
	SendOver        string       `json:"sendOver"`
	PIDs            []int        `json:"pids,omitempty"`
	DBPIDs          []int        `json:"dbPids,omitempty"`
	JSON            bool         `json:"-"`
}

func (o *options) duration() time.Duration { return time.Duration(o.Duration) }

// counted says whether the measured part ends after --requests operations
// rather than after --duration.
func (o *options) counted() bool { return o.Requests > 0 }

// forever stands for the end of a window that ends by count, not by time.
const forever = 100 * 365 * 24 * time.Hour

// window is the measured part of a scenario: it starts after the warm-up
// and ends after --duration, or, with --requests, never by time.
func (o *options) window() window {
	if o.counted() {
		return newWindow(o.warmup(), forever)
	}
	return newWindow(o.warmup(), o.duration())
}
func (o *options) warmup() time.Duration { return time.Duration(o.Warmup) }

// senders is --senders, or --concurrency when it is 0.
func (o *options) senders() int {
	if o.Senders > 0 {
		return o.Senders
	}
	return o.Concurrency
}

var scenarios = []string{"me", "dm", "room", "history", "fanout"}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	fs := flag.NewFlagSet("qchat-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: qchat-load --server URL[,URL...] [flags]\n\n"+
			"Scenarios: me (authenticated query), dm (direct messages), room (messages into rooms, every\n"+
			"member subscribed), history (pages of a room's messages among filler), fanout (many websocket\n"+
			"subscribers, senders at --rate), all (each of them in turn).\n\n"+
			"Seeding a large history takes minutes: --history-state FILE seeds once, saves the room there,\n"+
			"and later runs with the same FILE measure that room again without seeding.\n\n")
		fs.PrintDefaults()
	}
	var (
		o                               options
		servers, pids, dbPids           string
		duration, warmup, drain, budget time.Duration
	)
	fs.StringVar(&servers, "server", "", "server root URL (required); several comma-separated URLs spread users and sockets across instances")
	fs.StringVar(&o.Scenario, "scenario", "all", "me, dm, room, history, fanout or all")
	fs.IntVar(&o.Users, "users", 0, "users for the me scenario (0: one per worker)")
	fs.IntVar(&o.Rooms, "rooms", 10, "rooms for the room and fanout scenarios")
	fs.IntVar(&o.RoomSize, "room-size", 10, "members per room (room and history scenarios)")
	fs.IntVar(&o.Subscribers, "subscribers", 200, "websocket subscribers of the fanout scenario, spread over --rooms")
	fs.IntVar(&o.Senders, "senders", 0, "concurrent senders (0: --concurrency)")
	fs.Float64Var(&o.Rate, "rate", 0, "target messages/s over all senders (0: as fast as possible)")
	fs.DurationVar(&duration, "duration", 10*time.Second, "measured time of each scenario")
	fs.IntVar(&o.Requests, "requests", 0, "measure this many operations per scenario instead of --duration (me: requests, history: pages, dm/room/fanout: messages);\n"+
		"the run takes as long as the machine needs, so figures of different machines count the same work")
	fs.DurationVar(&warmup, "warmup", time.Second, "load before the measured time, not counted")
	fs.DurationVar(&drain, "drain", 5*time.Second, "how long to wait for outstanding deliveries after the last send")
	fs.IntVar(&o.Concurrency, "concurrency", 16, "concurrent workers (requests in flight)")
	fs.IntVar(&o.HistoryMessages, "history-messages", 1000, "messages in the history scenario's room")
	fs.IntVar(&o.HistoryFiller, "history-filler", 10000, "messages in other rooms around it")
	fs.StringVar(&o.HistoryState, "history-state", "", "JSON `FILE` that keeps the history seed between runs, so that a large seed is made once and measured many times\n"+
		"(e.g. against a newer server on the same database): if FILE is missing, seed as usual, then save the room and its members'\n"+
		"logins there (mode 0600); if it exists, log those members in and page through that room without seeding,\n"+
		"ignoring --room-size, --history-messages and --history-filler")
	fs.IntVar(&o.Preseal, "preseal", -1, "envelopes sealed before the clock starts (-1: enough for --rate, or as many as --preseal-budget allows); the rest are sealed while sending")
	fs.DurationVar(&budget, "preseal-budget", 20*time.Second, "longest time spent pre-sealing per scenario")
	fs.Float64Var(&o.OpenSample, "open-sample", 0.01, "fraction of received messages decrypted to prove the envelopes are correct")
	fs.StringVar(&o.SendOver, "send-over", "http", "how dm, room and fanout senders send: http (a POST per message) or ws (mutations over one open websocket per sender)")
	fs.StringVar(&pids, "pid", "", "server process id(s) to sample, comma-separated (default: found by the URL's port on this machine)")
	fs.StringVar(&dbPids, "db-pid", "", "database process ids to sample apart from the servers, comma-separated (e.g. PostgreSQL's backends\n"+
		"serving the servers' pool, opened at start with DB_POOL_MIN, and its WAL writer): their CPU per unit is reported as database CPU")
	fs.BoolVar(&o.JSON, "json", false, "print one JSON object instead of the table")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	o.Duration, o.Warmup, o.Drain, o.PresealBudget = jsonDuration(duration), jsonDuration(warmup), jsonDuration(drain), jsonDuration(budget)
	for _, s := range strings.Split(servers, ",") {
		s = strings.TrimRight(strings.TrimSpace(s), "/")
		if s == "" {
			continue
		}
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("--server %q: want http://host:port or https://...", s)
		}
		o.Servers = append(o.Servers, s)
	}
	if len(o.Servers) == 0 {
		fs.Usage()
		return nil, errors.New("--server is required")
	}
	var err error
	if o.PIDs, err = parsePIDs("--pid", pids); err != nil {
		return nil, err
	}
	if o.DBPIDs, err = parsePIDs("--db-pid", dbPids); err != nil {
		return nil, err
	}
	switch {
	case o.Scenario != "all" && !contains(scenarios, o.Scenario):
		return nil, fmt.Errorf("--scenario %q: want one of %s or all", o.Scenario, strings.Join(scenarios, ", "))
	case o.Concurrency < 1 || o.Senders < 0 || o.Users < 0:
		return nil, errors.New("--concurrency must be at least 1, --senders and --users not negative")
	case o.Rooms < 1 || o.RoomSize < 1 || o.Subscribers < 1:
		return nil, errors.New("--rooms, --room-size and --subscribers must be at least 1")
	case o.RoomSize > 1000:
		return nil, errors.New("--room-size: a room holds at most 1000 members")
	case o.Rate < 0 || duration <= 0 || warmup < 0 || drain < 0 || budget < 0 || o.Requests < 0:
		return nil, errors.New("--rate, --warmup, --drain, --preseal-budget and --requests must not be negative, --duration positive")
	case o.HistoryMessages < 1 || o.HistoryFiller < 0:
		return nil, errors.New("--history-messages must be at least 1, --history-filler not negative")
	case o.HistoryState != "" && o.Scenario != "history" && o.Scenario != "all":
		return nil, errors.New("--history-state is for the history scenario (or all)")
	case o.SendOver != "http" && o.SendOver != "ws":
		return nil, fmt.Errorf("--send-over %q: http or ws", o.SendOver)
	case o.OpenSample < 0 || o.OpenSample > 1:
		return nil, errors.New("--open-sample is a fraction from 0 to 1")
	}
	if o.Subscribers < o.Rooms {
		return nil, fmt.Errorf("--subscribers %d is fewer than --rooms %d", o.Subscribers, o.Rooms)
	}
	return &o, nil
}

// parsePIDs reads a comma-separated list of process ids.
func parsePIDs(flag, list string) ([]int, error) {
	var out []int
	for _, p := range strings.Split(list, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		n, err := strconv.Atoi(p)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%s %q: want a process id", flag, p)
		}
		out = append(out, n)
	}
	return out, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// run is the whole command: parse, probe the servers, run the scenarios,
// print the report.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	c := newCluster(o, stderr)
	defer c.close()
	rep := &report{Tool: "qchat-load", Started: time.Now().UTC(), Machine: machine(), Params: o}
	for i, u := range o.Servers {
		info := serverInfo{URL: u, Version: c.version(ctx, u)}
		if i < len(o.PIDs) {
			info.PID = o.PIDs[i]
		} else if pid, err := findListener(u); err == nil {
			info.PID = pid
		}
		rep.Servers = append(rep.Servers, info)
	}
	c.pids = make([]int, 0, len(rep.Servers))
	for _, s := range rep.Servers {
		if s.PID > 0 {
			c.pids = append(c.pids, s.PID)
		}
	}
	list := []string{o.Scenario}
	if o.Scenario == "all" {
		list = scenarios
	}
	var failed []string
	for _, name := range list {
		if ctx.Err() != nil {
			break
		}
		c.logf("%s: starting", name)
		res, err := runScenario(ctx, c, name)
		if err != nil {
			err = c.explain(err)
			c.logf("%s: %v", name, err)
			if res == nil {
				res = &result{Name: name}
			}
			res.Error = err.Error()
			failed = append(failed, name)
		}
		var cpu float64
		for _, s := range res.Usage.Servers {
			cpu += s.CPUPercent
		}
		if cpu > 0 {
			res.PerServerCPUSecond = round1(res.PerSecond / (cpu / 100))
		}
		res.ServerCPU = perUnit(res, res.Usage.serverCPU())
		res.DatabaseCPU = perUnit(res, res.Usage.databaseCPU())
		rep.Scenarios = append(rep.Scenarios, res)
		if !o.JSON && res != nil {
			printResult(stdout, rep, res)
		}
	}
	if o.JSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted: %w", ctx.Err())
	}
	if len(failed) > 0 {
		return fmt.Errorf("scenario(s) failed: %s", strings.Join(failed, ", "))
	}
	return nil
}

func runScenario(ctx context.Context, c *cluster, name string) (*result, error) {
	switch name {
	case "me":
		return runMe(ctx, c)
	case "dm":
		return runDM(ctx, c)
	case "room":
		return runRoom(ctx, c)
	case "history":
		return runHistory(ctx, c)
	case "fanout":
		return runFanout(ctx, c)
	}
	return nil, fmt.Errorf("unknown scenario %q", name)
}
