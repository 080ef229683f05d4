package main

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// This file reads /proc (Linux): the server's CPU and memory when it runs on
// the same machine, the tool's own CPU, and the machine's.

// clockTicks is USER_HZ, the unit of the CPU times in /proc/PID/stat; 100 on
// every Linux architecture Go supports.
const clockTicks = 100

type machineInfo struct {
	CPUModel   string `json:"cpuModel"`
	NumCPU     int    `json:"numCPU"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	GoVersion  string `json:"goVersion"`
	OS         string `json:"os"`
}

func machine() machineInfo {
	m := machineInfo{NumCPU: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}

// findListener returns the process listening on the URL's port, if the URL
// names this machine and /proc shows the socket (same user or root).
func findListener(raw string) (int, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return 0, err
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return 0, err
	}
	if !isLocalHost(u.Hostname()) {
		return 0, errors.New("not this machine")
	}
	inodes := map[string]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		listeningInodes(f, p, inodes)
	}
	if len(inodes) == 0 {
		return 0, fmt.Errorf("no listener on port %d", p)
	}
	dirs, _ := filepath.Glob("/proc/[0-9]*/fd")
	self := os.Getpid()
	for _, d := range dirs {
		pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(d)))
		if pid == self {
			continue // an in-process server (the tests) is not worth sampling
		}
		fds, err := os.ReadDir(d)
		if err != nil {
			continue
		}
		for _, fd := range fds {
			l, err := os.Readlink(filepath.Join(d, fd.Name()))
			if err == nil && strings.HasPrefix(l, "socket:[") && inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] {
				return pid, nil
			}
		}
	}
	return 0, fmt.Errorf("no visible process owns the listener on port %d", p)
}

func isLocalHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	if ip == nil {
		return false
	}
	if ip.IsLoopback() {
		return true
	}
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.Equal(ip) {
			return true
		}
	}
	return false
}

// listeningInodes adds the socket inodes of /proc/net/tcp{,6} lines that
// listen (state 0A) on port.
func listeningInodes(file string, port int, out map[string]bool) {
	f, err := os.Open(file)
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 10 || fields[3] != "0A" {
			continue
		}
		_, hexPort, ok := strings.Cut(fields[1], ":")
		if n, err := strconv.ParseInt(hexPort, 16, 32); ok && err == nil && int(n) == port {
			out[fields[9]] = true
		}
	}
}

// procCPU is a process's user+system CPU time so far.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name may hold spaces; the fields after it are fixed.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("unexpected /proc stat")
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, errors.New("unexpected /proc stat")
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}

// procRSS is a process's resident set in bytes.
func procRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmRSS")
}

// selfCPU is the tool's own CPU time (getrusage).
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// machineCPU is the busy and total CPU time of the whole machine.
func machineCPU() (busy, total time.Duration) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return 0, 0
	}
	var sum, idle int64
	for i, v := range f[1:] {
		n, _ := strconv.ParseInt(v, 10, 64)
		if i >= 8 { // guest time is already inside user time
			break
		}
		sum += n
		if i == 3 || i == 4 { // idle, iowait
			idle += n
		}
	}
	return time.Duration(sum-idle) * time.Second / clockTicks, time.Duration(sum) * time.Second / clockTicks
}

// processStats is what the report says about one server process.
type processStats struct {
	PID        int     `json:"pid"`
	CPUPercent float64 `json:"cpuPercent"` // of one core: 200 = two cores busy
	CPUSeconds float64 `json:"cpuSeconds"` // user+system over the measured time (10 ms steps)
	RSSMiB     float64 `json:"rssMiB"`     // at the end of the measured time
	PeakRSSMiB float64 `json:"peakRssMiB"` // highest sample during the scenario
}

// serverCPU is the servers' CPU over the measured time, summed over the
// sampled processes; 0 when none was sampled.
func (u usage) serverCPU() time.Duration {
	var d time.Duration
	for _, s := range u.Servers {
		d += time.Duration(s.CPUSeconds * float64(time.Second))
	}
	return d
}

// databaseCPU is the --db-pid processes' CPU over the measured time.
func (u usage) databaseCPU() time.Duration {
	var d time.Duration
	for _, s := range u.Database {
		d += time.Duration(s.CPUSeconds * float64(time.Second))
	}
	return d
}

// usage is the CPU share of the tool, the servers and the machine over the
// measured time, and the servers' memory over the whole scenario.
type usage struct {
	Servers           []processStats `json:"servers,omitempty"`
	Database          []processStats `json:"database,omitempty"` // the --db-pid processes
	ToolCPUPercent    float64        `json:"toolCpuPercent"`
	MachineCPUPercent float64        `json:"machineCpuPercent"` // busy share of all cores, 100 = all busy
}

// sampler watches the server processes while a scenario runs.
type sampler struct {
	pids     []int // the servers', then the database's
	nServers int
	stop     chan struct{}
	done     chan struct{}

	mu   sync.Mutex
	peak []int64

	t0, t1             time.Time
	cpu0, cpu1         []time.Duration
	self0, self1       time.Duration
	busy0, busy1       time.Duration
	mtotal0, mtotal1   time.Duration
	rssEnd             []int64
	startedMeasurement bool
}

func startSampler(servers, database []int) *sampler {
	pids := append(append([]int(nil), servers...), database...)
	s := &sampler{pids: pids, nServers: len(servers), stop: make(chan struct{}), done: make(chan struct{}), peak: make([]int64, len(pids))}
	go func() {
		defer close(s.done)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			s.sampleRSS()
			select {
			case <-t.C:
			case <-s.stop:
				return
			}
		}
	}()
	return s
}

func (s *sampler) sampleRSS() []int64 {
	now := make([]int64, len(s.pids))
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, pid := range s.pids {
		if r, err := procRSS(pid); err == nil {
			now[i] = r
			s.peak[i] = max(s.peak[i], r)
		}
	}
	return now
}

func (s *sampler) cpus() []time.Duration {
	out := make([]time.Duration, len(s.pids))
	for i, pid := range s.pids {
		out[i], _ = procCPU(pid)
	}
	return out
}

// begin and end bracket the measured time.
func (s *sampler) begin() {
	s.t0, s.cpu0, s.self0 = time.Now(), s.cpus(), selfCPU()
	s.busy0, s.mtotal0 = machineCPU()
	s.startedMeasurement = true
}

func (s *sampler) end() {
	s.t1, s.cpu1, s.self1 = time.Now(), s.cpus(), selfCPU()
	s.busy1, s.mtotal1 = machineCPU()
	s.rssEnd = s.sampleRSS()
}

func (s *sampler) finish() usage {
	close(s.stop)
	<-s.done
	var u usage
	if !s.startedMeasurement || s.t1.IsZero() {
		return u
	}
	wall := s.t1.Sub(s.t0).Seconds()
	pct := func(d time.Duration) float64 { return round1(100 * d.Seconds() / wall) }
	u.ToolCPUPercent = pct(s.self1 - s.self0)
	if s.mtotal1 > s.mtotal0 {
		u.MachineCPUPercent = round1(100 * float64(s.busy1-s.busy0) / float64(s.mtotal1-s.mtotal0))
	}
	for i, pid := range s.pids {
		ps := processStats{
			PID: pid, CPUPercent: pct(s.cpu1[i] - s.cpu0[i]), CPUSeconds: round3((s.cpu1[i] - s.cpu0[i]).Seconds()),
			RSSMiB: mib(s.rssEnd[i]), PeakRSSMiB: mib(s.peak[i]),
		}
		if i < s.nServers {
			u.Servers = append(u.Servers, ps)
		} else {
			u.Database = append(u.Database, ps)
		}
	}
	return u
}

func mib(b int64) float64      { return round1(float64(b) / (1 << 20)) }
func round1(f float64) float64 { return float64(int64(f*10+0.5)) / 10 }
