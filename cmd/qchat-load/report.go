package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// report is the whole run, printed as one JSON object with --json.
type report struct {
	Tool      string       `json:"tool"`
	Started   time.Time    `json:"started"`
	Machine   machineInfo  `json:"machine"`
	Servers   []serverInfo `json:"servers"`
	Params    *options     `json:"params"`
	Scenarios []*result    `json:"scenarios"`
}

type serverInfo struct {
	URL     string `json:"url"`
	Version string `json:"version"`
	PID     int    `json:"pid,omitempty"` // 0: not on this machine or not visible
}

// result is one scenario's figures. Throughput and latency are over the
// measured time only (after the warm-up).
type result struct {
	Name       string    `json:"name"`
	Error      string    `json:"error,omitempty"`
	Setup      setupInfo `json:"setup"`
	Seconds    float64   `json:"seconds"`
	Unit       string    `json:"unit"` // what OK and PerSecond count
	OK         int64     `json:"ok"`
	PerSecond  float64   `json:"perSecond"`
	TargetRate float64   `json:"targetRate,omitempty"`
	// PerServerCPUSecond is PerSecond divided by the servers' CPU share: on
	// a machine shared with other work it moves less than PerSecond does.
	PerServerCPUSecond float64          `json:"perServerCpuSecond,omitempty"`
	ServerCPU          *serverCPU       `json:"serverCpu,omitempty"`
	DatabaseCPU        *serverCPU       `json:"databaseCpu,omitempty"` // of the --db-pid processes
	Latency            latency          `json:"latency"`               // of the request, the send or the page
	Delivery           *delivery        `json:"delivery,omitempty"`
	Seal               *sealInfo        `json:"seal,omitempty"`
	Seed               *seedInfo        `json:"seed,omitempty"`
	Errors             map[string]int64 `json:"errors"`
	ErrorCount         int64            `json:"errorCount"`
	Usage              usage            `json:"usage"`
	Notes              []string         `json:"notes,omitempty"`
}

// serverCPU is the servers' CPU (user+system from /proc, summed over the
// sampled processes) over the measured time, per unit of work. Throughput
// on a machine shared with other work measures the machine; CPU per unit
// measures the server, so before/after pairs compare on it.
type serverCPU struct {
	Seconds float64 `json:"seconds"`
	// MicrosPerUnit is per request (me), message (dm, room, fanout: per
	// message sent) or page (history).
	MicrosPerUnit float64 `json:"microsPerUnit"`
	// MicrosPerDelivery (dm, room, fanout) is per websocket delivery the
	// accepted messages caused: the sender's own socket included, so 2 per
	// direct message and one per member in a room.
	MicrosPerDelivery float64 `json:"microsPerDelivery,omitempty"`
}

// perUnit computes r.ServerCPU (or r.DatabaseCPU) from the processes' CPU;
// nil when none was sampled, nothing succeeded, or the run was too short
// for /proc's 10 ms steps.
func perUnit(r *result, cpu time.Duration) *serverCPU {
	if cpu <= 0 || r.OK <= 0 {
		return nil
	}
	us := float64(cpu.Microseconds())
	sc := &serverCPU{Seconds: round3(cpu.Seconds()), MicrosPerUnit: round1(us / float64(r.OK))}
	if d := r.Delivery; d != nil && d.Expected > 0 {
		sc.MicrosPerDelivery = round1(us / float64(d.Expected))
	}
	return sc
}

// singular names one unit of work in the table.
var singular = map[string]string{"requests": "request", "messages": "message", "pages": "page"}

type setupInfo struct {
	Users       int     `json:"users"`
	Rooms       int     `json:"rooms,omitempty"`
	Sockets     int     `json:"sockets,omitempty"`
	Senders     int     `json:"senders,omitempty"`
	Concurrency int     `json:"concurrency,omitempty"`
	Seconds     float64 `json:"seconds"`
}

// delivery compares what the subscribed sockets received with what the
// accepted messages should have caused; latency is from the start of the
// send to the receipt, matched by message id.
type delivery struct {
	Expected   int64   `json:"expected"`
	Delivered  int64   `json:"delivered"`
	Dropped    int64   `json:"dropped"`
	Duplicates int64   `json:"duplicates"`
	Unknown    int64   `json:"unknown"` // messages the tool did not send
	Latency    latency `json:"latency"`
	Opened     int64   `json:"opened"` // sampled deliveries decrypted and checked
	OpenFailed int64   `json:"openFailed"`
}

type sealInfo struct {
	Recipients int     `json:"recipients"`
	Presealed  int     `json:"presealed"`
	Seconds    float64 `json:"seconds"`
	PerSecond  float64 `json:"perSecond"`
	Inline     int64   `json:"inline"` // sealed while sending, after the pool ran out
}

type seedInfo struct {
	Messages  int              `json:"messages"`
	Filler    int              `json:"filler"`
	Posted    int64            `json:"posted"`
	Seconds   float64          `json:"seconds"`
	PerSecond float64          `json:"perSecond"` // sealing included
	Errors    map[string]int64 `json:"errors,omitempty"`
	// Reused: nothing was posted in this run; the room was seeded by an
	// earlier one and found through the --history-state file in State.
	// Without Reused, State is where this run saved its seed.
	Reused bool   `json:"reused,omitempty"`
	State  string `json:"state,omitempty"`
}

func printResult(out io.Writer, rep *report, r *result) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	p := func(k, format string, args ...any) {
		fmt.Fprintf(tw, "  %s\t"+format+"\n", append([]any{k}, args...)...)
	}
	fmt.Fprintf(tw, "== %s ==\n", r.Name)
	if r.Error != "" {
		p("error", "%s", r.Error)
	}
	p("servers", "%s", serversLine(rep.Servers))
	p("machine", "%d CPUs (%s), GOMAXPROCS %d", rep.Machine.NumCPU, rep.Machine.CPUModel, rep.Machine.GOMAXPROCS)
	su := r.Setup
	p("setup", "%d users, %d rooms, %d sockets, %d senders, concurrency %d in %.1fs", su.Users, su.Rooms, su.Sockets, su.Senders, su.Concurrency, su.Seconds)
	if s := r.Seed; s != nil && s.Reused {
		p("seeding", "reused from %s: %d in the room, %d filler, seeded by an earlier run; nothing posted", s.State, s.Messages, s.Filler)
	} else if s != nil {
		p("seeding", "%d posted (%d in the room, %d filler) in %.1fs: %.0f messages/s, sealing included; errors %s",
			s.Posted, s.Messages, s.Filler, s.Seconds, s.PerSecond, formatErrors(s.Errors))
		if s.State != "" {
			p("seed saved", "%s; runs with this --history-state measure it again without seeding", s.State)
		}
	}
	if s := r.Seal; s != nil {
		p("pre-sealed", "%d envelopes for %d recipients in %.1fs (%.0f/s); %d sealed while sending", s.Presealed, s.Recipients, s.Seconds, s.PerSecond, s.Inline)
	}
	target := ""
	if r.TargetRate > 0 {
		target = fmt.Sprintf(" (target %.0f/s)", r.TargetRate)
	}
	p("throughput", "%.1f %s/s%s: %d ok in %.1fs, %d errors", r.PerSecond, r.Unit, target, r.OK, r.Seconds, r.ErrorCount)
	if r.PerServerCPUSecond > 0 {
		p("per server CPU", "%.0f %s per CPU-second of the server(s)", r.PerServerCPUSecond, r.Unit)
	}
	if sc := r.ServerCPU; sc != nil {
		line := fmt.Sprintf("%.0f µs per %s", sc.MicrosPerUnit, singular[r.Unit])
		if sc.MicrosPerDelivery > 0 {
			line += fmt.Sprintf(", %.1f µs per delivery", sc.MicrosPerDelivery)
		}
		p("server CPU", "%s (%.2f CPU-seconds in all)", line, sc.Seconds)
	}
	if sc := r.DatabaseCPU; sc != nil {
		p("database CPU", "%.0f µs per %s (%.2f CPU-seconds in all)", sc.MicrosPerUnit, singular[r.Unit], sc.Seconds)
	}
	what := map[string]string{"messages": "send latency", "pages": "page latency"}[r.Unit]
	if what == "" {
		what = "latency"
	}
	p(what, "%s", latencyLine(r.Latency))
	if d := r.Delivery; d != nil {
		p("delivered", "%d of %d expected, %d dropped, %d duplicates, %d unknown", d.Delivered, d.Expected, d.Dropped, d.Duplicates, d.Unknown)
		p("delivery latency", "%s", latencyLine(d.Latency))
		p("opened sample", "%d decrypted and checked, %d failed", d.Opened, d.OpenFailed)
	}
	p("errors", "%s", formatErrors(r.Errors))
	for _, s := range r.Usage.Servers {
		p("server", "pid %d: CPU %.0f%% of one core, RSS %.1f MiB (peak %.1f MiB)", s.PID, s.CPUPercent, s.RSSMiB, s.PeakRSSMiB)
	}
	for _, s := range r.Usage.Database {
		p("database", "pid %d: CPU %.0f%% of one core", s.PID, s.CPUPercent)
	}
	if len(r.Usage.Servers) == 0 {
		p("server", "not sampled (not on this machine, or give --pid)")
	}
	p("load tool", "CPU %.0f%% of one core; machine %.0f%% busy", r.Usage.ToolCPUPercent, r.Usage.MachineCPUPercent)
	for _, n := range r.Notes {
		p("note", "%s", n)
	}
	_ = tw.Flush()
	fmt.Fprintln(out)
}

func latencyLine(l latency) string {
	if l.Count == 0 {
		return "no samples"
	}
	return fmt.Sprintf("p50 %.2f ms  p95 %.2f ms  p99 %.2f ms  max %.2f ms  (n=%d)", l.P50, l.P95, l.P99, l.Max, l.Count)
}

func serversLine(ss []serverInfo) string {
	parts := make([]string, len(ss))
	for i, s := range ss {
		v := s.Version
		if v == "" {
			v = "version unknown"
		}
		parts[i] = fmt.Sprintf("%s (%s)", s.URL, v)
	}
	return strings.Join(parts, ", ")
}
