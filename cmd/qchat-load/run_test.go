package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/qchat/qchat/internal/config"
	"github.com/qchat/qchat/internal/qchattest"
)

// runJSON runs the tool with --json against url and decodes the report.
func runJSON(t *testing.T, args ...string) (*report, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	// No time budget: --requests ends each run after a fixed amount of work,
	// and a hang is go test's -timeout to catch.
	err := run(t.Context(), append(args, "--json"), &out, &errOut)
	var rep report
	if jerr := json.Unmarshal(out.Bytes(), &rep); jerr != nil {
		t.Fatalf("run: %v; output is not a JSON report (%v):\n%s\nstderr:\n%s", err, jerr, out.String(), errOut.String())
	}
	if err != nil {
		t.Logf("stderr:\n%s", errOut.String())
	}
	return &rep, errOut.String()
}

// Each scenario against an in-process server (rate limits off), checking
// that the figures make sense. Every run does a fixed amount of work
// (--requests), with no warm-up, and waits for deliveries as long as they
// take (the --drain and --preseal-budget bounds only catch a hang), so the
// figures do not depend on the machine's speed: a slow machine measures
// the same count, slowly.
func TestScenarios(t *testing.T) {
	srv := qchattest.NewServer(t, qchattest.NewSQLite(t))
	// Every delivery is opened: each must verify against its sender's
	// identity key and decrypt to the text sent.
	short := []string{"--warmup", "0s", "--drain", "10m", "--concurrency", "4", "--preseal-budget", "10m", "--open-sample", "1"}
	// The tool samples its own process here (server and tool in one): the
	// figures are not the server's, but the arithmetic is the same.
	short = append(short, "--pid", strconv.Itoa(os.Getpid()))
	tests := []struct {
		name, scenario string
		requests       int64
		args           []string
		delivery       bool
	}{
		{"me", "me", 40, nil, false},
		{"dm", "dm", 20, []string{"--senders", "2", "--rate", "20"}, true},
		{"dm over ws", "dm", 20, []string{"--senders", "2", "--rate", "20", "--send-over", "ws"}, true},
		{"room", "room", 20, []string{"--rooms", "2", "--room-size", "3", "--senders", "2", "--rate", "20"}, true},
		{"history", "history", 12, []string{"--history-messages", "120", "--history-filler", "60", "--room-size", "2"}, false},
		{"fanout", "fanout", 15, []string{"--subscribers", "12", "--rooms", "3", "--senders", "3", "--rate", "15"}, true},
		{"fanout over ws", "fanout", 15, []string{"--subscribers", "12", "--rooms", "3", "--senders", "3", "--rate", "15", "--send-over", "ws"}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--server", srv.URL, "--scenario", tc.scenario, "--requests", strconv.FormatInt(tc.requests, 10)}, short...)
			rep, stderr := runJSON(t, append(args, tc.args...)...)
			if len(rep.Scenarios) != 1 {
				t.Fatalf("%d scenarios in the report, want 1", len(rep.Scenarios))
			}
			r := rep.Scenarios[0]
			if r.Error != "" || r.ErrorCount != 0 {
				t.Fatalf("error %q, errors %v\n%s", r.Error, r.Errors, stderr)
			}
			if r.Name != tc.scenario || r.OK != tc.requests || r.PerSecond <= 0 || r.Latency.Count != r.OK || r.Latency.P50 <= 0 || r.Latency.Max < r.Latency.P99 {
				t.Errorf("implausible figures: %+v", r)
			}
			if rep.Servers[0].Version != "test" || rep.Machine.NumCPU < 1 || rep.Params.Scenario != tc.scenario {
				t.Errorf("report header: servers %+v machine %+v", rep.Servers, rep.Machine)
			}
			if len(r.Usage.Servers) != 1 || r.Usage.Servers[0].PID != os.Getpid() {
				t.Fatalf("usage: %+v, want the --pid process", r.Usage)
			}
			// CPU is counted in 10 ms steps, so a short run may show none;
			// what shows must be the sampled CPU over the work done.
			if cpu := r.Usage.Servers[0].CPUSeconds; cpu > 0 {
				sc := r.ServerCPU
				if sc == nil || sc.Seconds != cpu || !near(sc.MicrosPerUnit, cpu*1e6/float64(r.OK)) {
					t.Errorf("server CPU %+v, want %.3f s over %d %s", sc, cpu, r.OK, r.Unit)
				} else if tc.delivery && !near(sc.MicrosPerDelivery, cpu*1e6/float64(r.Delivery.Expected)) {
					t.Errorf("server CPU %+v, want %.3f s over %d deliveries", sc, cpu, r.Delivery.Expected)
				}
			}
			if !tc.delivery {
				return
			}
			d := r.Delivery
			if d == nil || d.Expected == 0 || d.Delivered != d.Expected || d.Dropped != 0 || d.Duplicates != 0 || d.Latency.Count != d.Delivered {
				t.Errorf("delivery: %+v", d)
			}
			if d != nil && (d.Opened < d.Delivered || d.OpenFailed != 0) { // probes are opened too
				t.Errorf("opened %d of %d deliveries, %d failed (unsigned, or not verified)", d.Opened, d.Delivered, d.OpenFailed)
			}
			if r.Seal == nil || r.Seal.Presealed == 0 || r.Seal.Inline != 0 {
				t.Errorf("seal: %+v", r.Seal)
			}
		})
	}
	if t.Failed() {
		return
	}
	// The history seed went through the API: the room holds its messages.
	var n int
	if err := srv.Store.DB().NewRaw("SELECT count(*) FROM messages").Scan(context.Background(), &n); err == nil && n < 180 {
		t.Errorf("%d messages stored, want at least the 180 seeded", n)
	}
}

// near says whether a figure rounded to 0.1 is v.
func near(got, v float64) bool { return math.Abs(got-v) <= 0.051 }

// Server CPU per unit of work: per request, message or page, and per
// delivery for the messaging scenarios, summed over the servers; in the
// JSON report and in the table.
func TestServerCPUPerUnit(t *testing.T) {
	servers := []processStats{{PID: 1, CPUSeconds: 1.5}, {PID: 2, CPUSeconds: 0.5}}
	tests := []struct {
		name     string
		res      result
		want     *serverCPU
		wantLine string
	}{
		{"requests", result{Unit: "requests", OK: 10000, Usage: usage{Servers: servers}},
			&serverCPU{Seconds: 2, MicrosPerUnit: 200}, "200 µs per request (2.00 CPU-seconds in all)"},
		{"pages", result{Unit: "pages", OK: 400, Usage: usage{Servers: servers[:1]}},
			&serverCPU{Seconds: 1.5, MicrosPerUnit: 3750}, "3750 µs per page"},
		{"fanout", result{Unit: "messages", OK: 800, Delivery: &delivery{Expected: 80000}, Usage: usage{Servers: servers}},
			&serverCPU{Seconds: 2, MicrosPerUnit: 2500, MicrosPerDelivery: 25}, "2500 µs per message, 25.0 µs per delivery"},
		{"dm", result{Unit: "messages", OK: 3000, Delivery: &delivery{Expected: 6000}, Usage: usage{Servers: servers[1:]}},
			&serverCPU{Seconds: 0.5, MicrosPerUnit: 166.7, MicrosPerDelivery: 83.3}, "167 µs per message, 83.3 µs per delivery"},
		{"not sampled", result{Unit: "messages", OK: 10}, nil, ""},
		{"nothing done", result{Unit: "messages", Usage: usage{Servers: servers}}, nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.res
			r.ServerCPU = perUnit(&r, r.Usage.serverCPU())
			if (r.ServerCPU == nil) != (tc.want == nil) || r.ServerCPU != nil && *r.ServerCPU != *tc.want {
				t.Fatalf("perUnit = %+v, want %+v", r.ServerCPU, tc.want)
			}
			var out bytes.Buffer
			printResult(&out, &report{}, &r)
			line := ""
			for _, l := range strings.Split(out.String(), "\n") {
				if strings.Contains(l, "server CPU") {
					line = l
				}
			}
			if tc.wantLine == "" && line != "" || !strings.Contains(line, tc.wantLine) {
				t.Errorf("table line %q, want %q", line, tc.wantLine)
			}
			b, _ := json.Marshal(&r)
			if tc.want != nil && !strings.Contains(string(b), `"serverCpu":{"seconds":`) {
				t.Errorf("JSON without serverCpu: %s", b)
			}
		})
	}
}

// countMessages is the number of messages the server has stored.
func countMessages(t *testing.T, srv *qchattest.Server) int {
	t.Helper()
	var n int
	if err := srv.Store.DB().NewRaw("SELECT count(*) FROM messages").Scan(context.Background(), &n); err != nil {
		t.Fatalf("count messages: %v", err)
	}
	return n
}

// --history-state seeds and saves on the first run; the second run with the
// same file posts nothing and pages through the same room.
func TestHistoryState(t *testing.T) {
	srv := qchattest.NewServer(t, qchattest.NewSQLite(t))
	path := filepath.Join(t.TempDir(), "history.json")
	args := []string{"--server", srv.URL, "--scenario", "history", "--history-state", path,
		"--history-messages", "60", "--history-filler", "20", "--room-size", "2",
		"--requests", "10", "--warmup", "0s", "--concurrency", "2"}

	rep, stderr := runJSON(t, args...)
	r := rep.Scenarios[0]
	if r.Error != "" || r.ErrorCount != 0 || r.Seed == nil || r.Seed.Reused || r.Seed.Posted != 80 || r.Seed.State != path {
		t.Fatalf("first run: error %q errors %v seed %+v\n%s", r.Error, r.Errors, r.Seed, stderr)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %v, want 0600", fi.Mode().Perm())
	}
	st, err := readHistoryState(path)
	if err != nil || len(st.Members) != 2 || st.Messages != 60 || st.Filler != 20 {
		t.Fatalf("state file: %+v %v", st, err)
	}
	if tmp, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*.tmp")); len(tmp) > 0 {
		t.Errorf("temporary files left: %v", tmp)
	}
	stored := countMessages(t, srv)

	// Other seed sizes on the command line do not matter: the file decides.
	args[7], args[9] = "5000", "5000"
	var out, errOut bytes.Buffer
	if err := run(context.Background(), args, &out, &errOut); err != nil || !strings.Contains(out.String(), "reused from "+path) {
		t.Fatalf("second run (text): %v\n%s\n%s", err, out.String(), errOut.String())
	}
	rep, stderr = runJSON(t, args...)
	r = rep.Scenarios[0]
	if r.Error != "" || r.ErrorCount != 0 || r.OK != 10 || r.PerSecond <= 0 {
		t.Fatalf("second run: error %q errors %v ok %d\n%s", r.Error, r.Errors, r.OK, stderr)
	}
	if s := r.Seed; s == nil || !s.Reused || s.Messages != 60 || s.Filler != 20 || s.Posted != 0 || s.State != path {
		t.Errorf("second run seed: %+v", r.Seed)
	}
	if r.Setup.Users != 2 {
		t.Errorf("second run setup: %+v, want the 2 saved members", r.Setup)
	}
	if n := countMessages(t, srv); n != stored {
		t.Errorf("%d messages stored after the reuse, %d before", n, stored)
	}
}

// A state file that cannot be used fails the scenario with an error naming
// it, before anything is registered or posted.
func TestHistoryStateBad(t *testing.T) {
	srv := qchattest.NewServer(t, qchattest.NewSQLite(t))
	for name, content := range map[string]string{
		"corrupt": "{not json",
		"version": `{"version": 99, "roomId": "r", "messages": 1, "members": [{"username": "u", "password": "p"}]}`,
		"login":   `{"version": 1, "roomId": "r", "messages": 1, "members": [{"username": "nobody", "password": "wrong"}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "history.json")
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			rep, _ := runJSON(t, "--server", srv.URL, "--scenario", "history", "--history-state", path,
				"--history-messages", "5", "--history-filler", "0", "--requests", "5", "--warmup", "0s")
			r := rep.Scenarios[0]
			if !strings.Contains(r.Error, path) || r.OK != 0 {
				t.Errorf("error %q, ok %d; want an error naming %s", r.Error, r.OK, path)
			}
		})
	}
	if n := countMessages(t, srv); n != 0 {
		t.Errorf("%d messages stored; a bad state file must not seed", n)
	}
}

// Two URLs (here the same server twice) put sockets and senders on
// different instances; everything must still arrive.
func TestMultiInstance(t *testing.T) {
	srv := qchattest.NewServer(t, qchattest.NewSQLite(t))
	rep, _ := runJSON(t, "--server", srv.URL+","+srv.URL+"/", "--scenario", "room", "--rooms", "2", "--room-size", "2",
		"--senders", "2", "--requests", "20", "--warmup", "0s", "--drain", "10m", "--preseal-budget", "10m")
	r := rep.Scenarios[0]
	if len(rep.Servers) != 2 || r.Error != "" || r.OK != 20 || r.Delivery.Delivered != r.Delivery.Expected {
		t.Fatalf("servers %+v, result %+v delivery %+v", rep.Servers, r, r.Delivery)
	}
}

// A server with its rate limits on gets a hint, not just errors.
func TestRateLimitHint(t *testing.T) {
	srv := qchattest.NewServer(t, qchattest.NewSQLite(t), qchattest.Options{Config: func(c *config.Config) {
		c.UserRateLimitRate, c.UserRateLimitBurst = 0.01, 5
	}})
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"--server", srv.URL, "--scenario", "me", "--requests", "20", "--warmup", "0s", "--concurrency", "2"}, &out, &errOut)
	if err == nil && !strings.Contains(out.String(), "RATE_LIMITED") {
		t.Fatalf("no error and no RATE_LIMITED in the output:\n%s", out.String())
	}
	if !strings.Contains(errOut.String(), "USER_RATE_LIMIT_RATE=0") {
		t.Errorf("no hint on stderr:\n%s", errOut.String())
	}
}

func TestFlags(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"--server", "ftp://x"},
		{"--server", "http://127.0.0.1:1", "--scenario", "nope"},
		{"--server", "http://127.0.0.1:1", "--subscribers", "3", "--rooms", "5"},
		{"--server", "http://127.0.0.1:1", "--pid", "x"},
		{"--server", "http://127.0.0.1:1", "extra"},
		{"--server", "http://127.0.0.1:1", "--scenario", "me", "--history-state", "x.json"},
		{"--server", "http://127.0.0.1:1", "--send-over", "grpc"},
	} {
		if _, err := parseFlags(args, new(bytes.Buffer)); err == nil {
			t.Errorf("parseFlags(%q) accepted", args)
		}
	}
	o, err := parseFlags([]string{"--server", "http://a:1/, http://b:2", "--pid", "7,8", "--duration", "3s"}, new(bytes.Buffer))
	if err != nil || len(o.Servers) != 2 || o.Servers[0] != "http://a:1" || len(o.PIDs) != 2 || o.duration() != 3*time.Second || o.senders() != o.Concurrency {
		t.Fatalf("parseFlags: %+v %v", o, err)
	}
}
