package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// wrkMinRun is the shortest warm-up or measured run with wrk, which the
// bench ends with SIGINT (wrk's -d takes whole seconds).
const wrkMinRun = 100 * time.Millisecond

// wrkResultMark starts the line that wrkScript's done() writes.
const wrkResultMark = "indigo-bench-wrk "

// wrkScript sends the route's Authorization header (from the environment,
// so the key is on no command line) and reports the run as one JSON line.
// It defines neither request() nor response(), so wrk sends one prebuilt
// request and skips parsing headers and bodies: Lua costs nothing per
// request.
const wrkScript = `local auth = os.getenv("` + envAuth + `")
if auth ~= nil and auth ~= "" then wrk.headers["Authorization"] = auth end
wrk.headers["User-Agent"] = "indigo-bench"

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('` + wrkResultMark + `{"requests":%.0f,"duration_us":%.0f,"bytes":%.0f,"p50_us":%.0f,"p90_us":%.0f,"p99_us":%.0f,"max_us":%.0f,"connect_errors":%.0f,"read_errors":%.0f,"write_errors":%.0f,"status_errors":%.0f,"timeouts":%.0f}\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end
`

// wrkRun is what one wrk run reported.
type wrkRun struct {
	Requests      int64   `json:"requests"`
	DurationUs    float64 `json:"duration_us"`
	Bytes         int64   `json:"bytes"`
	P50Us         float64 `json:"p50_us"`
	P90Us         float64 `json:"p90_us"`
	P99Us         float64 `json:"p99_us"`
	MaxUs         float64 `json:"max_us"`
	ConnectErrors int64   `json:"connect_errors"`
	ReadErrors    int64   `json:"read_errors"`
	WriteErrors   int64   `json:"write_errors"`
	StatusErrors  int64   `json:"status_errors"` // answers with a status over 399
	Timeouts      int64   `json:"timeouts"`
}

// wrk runs the wrk binary as the load generator.
type wrk struct {
	path    string
	version string // the first words of `wrk -v`
	script  string // wrkScript's file
	threads int
	conns   int
}

// newWrk writes wrkScript into dir and reads wrk's version.
func newWrk(path, dir string, threads, conns int) (*wrk, error) {
	w := &wrk{path: path, threads: threads, conns: conns, script: dir + string(os.PathSeparator) + "indigo-bench.lua"}
	if err := os.WriteFile(w.script, []byte(wrkScript), 0o600); err != nil {
		return nil, err
	}
	// wrk -v prints its version and usage and exits 1.
	out, _ := exec.Command(path, "-v").CombinedOutput()
	line, _, _ := strings.Cut(string(out), "\n")
	w.version, _, _ = strings.Cut(strings.TrimSpace(line), " Copyright")
	if !strings.HasPrefix(w.version, "wrk ") {
		return nil, fmt.Errorf("%s -v: not wrk? %q", path, out)
	}
	return w, nil
}

// load runs wrk for warmup (unless 0), then for duration, against rt on
// addr, and returns the measured run's figures, with Total counting the
// warm-up's requests too, and wrk's CPU time over both.
func (w *wrk) load(b *bench, kind, addr string, rt route) (result, time.Duration, error) {
	var total int64
	var cpu time.Duration
	if b.o.warmup > 0 {
		warm, c, err := w.run(b, kind, addr, rt, b.o.warmup)
		if err != nil {
			return result{}, 0, err
		}
		total, cpu = warm.Requests, c
	}
	m, c, err := w.run(b, kind, addr, rt, b.o.duration)
	if err != nil {
		return result{}, 0, err
	}
	res := result{
		Requests: m.Requests, Total: total + m.Requests, Seconds: m.DurationUs / 1e6,
		P50Ms: m.P50Us / 1e3, P90Ms: m.P90Us / 1e3, P99Ms: m.P99Us / 1e3, MaxMs: m.MaxUs / 1e3,
	}
	if res.Seconds > 0 {
		res.RPS = float64(res.Requests) / res.Seconds
	}
	return res, cpu + c, nil
}

// run is one wrk process. wrk's -d takes whole seconds, so it gets a
// longer one and SIGINT d after it starts, on which it stops and reports
// the time it really ran. wrk checks no bodies: a run fails on any error or status
// over 399, or when it received fewer bytes than the bodies alone (the
// body itself was checked when it was recorded).
func (w *wrk) run(b *bench, kind, addr string, rt route, d time.Duration) (wrkRun, time.Duration, error) {
	secs := int64(d/time.Second) + 2
	cmd := exec.CommandContext(b.ctx, w.path,
		"-t", strconv.Itoa(w.threads), "-c", strconv.Itoa(w.conns), "-d", strconv.FormatInt(secs, 10)+"s",
		"--timeout", strconv.Itoa(int(latencyMax/time.Second))+"s", "-s", w.script, "http://"+addr+rt.path)
	cmd.Env = append(os.Environ(), envAuth+"="+rt.auth)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return wrkRun{}, 0, err
	}
	exited := make(chan struct{})
	go func() {
		// wrk takes its start time just after it installs its SIGINT
		// handler; before that, SIGINT would kill it without a report.
		if !catchesSIGINT(cmd.Process.Pid, exited) {
			return
		}
		select {
		case <-exited:
		case <-time.After(d):
			_ = cmd.Process.Signal(os.Interrupt)
		}
	}()
	err := cmd.Wait()
	close(exited)
	var cpu time.Duration
	if ps := cmd.ProcessState; ps != nil {
		cpu = ps.UserTime() + ps.SystemTime()
	}
	if err != nil {
		return wrkRun{}, cpu, fmt.Errorf("wrk against %s (%s): %w\n%s", kind, addr, err, out.Bytes())
	}
	r, err := parseWrk(out.Bytes())
	if err != nil {
		return r, cpu, fmt.Errorf("wrk against %s (%s): %w", kind, addr, err)
	}
	switch {
	case r.Requests == 0:
		return r, cpu, fmt.Errorf("wrk against %s completed no requests\n%s", kind, out.Bytes())
	case r.ConnectErrors+r.ReadErrors+r.WriteErrors+r.StatusErrors+r.Timeouts > 0:
		return r, cpu, fmt.Errorf("wrk against %s: %d connect, %d read and %d write errors, %d statuses over 399, %d timeouts",
			kind, r.ConnectErrors, r.ReadErrors, r.WriteErrors, r.StatusErrors, r.Timeouts)
	case r.Bytes < r.Requests*int64(len(rt.body)):
		return r, cpu, fmt.Errorf("wrk against %s: %d bytes for %d answers of a %d-byte body", kind, r.Bytes, r.Requests, len(rt.body))
	}
	return r, cpu, nil
}

// catchesSIGINT waits until the process pid has a handler for SIGINT
// (SigCgt in /proc/<pid>/status), and says whether it does: false if the
// process exited first. Without /proc to read it does not wait.
func catchesSIGINT(pid int, exited <-chan struct{}) bool {
	const sigint = 1 << (2 - 1) // SigCgt's bit for signal 2
	path := fmt.Sprintf("/proc/%d/status", pid)
	for {
		b, err := os.ReadFile(path)
		if err != nil {
			return true
		}
		for line := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(line, "SigCgt:"); ok {
				if mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64); err != nil || mask&sigint != 0 {
					return true
				}
			}
		}
		select {
		case <-exited:
			return false
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// parseWrk finds wrkScript's line in wrk's output.
func parseWrk(out []byte) (wrkRun, error) {
	var r wrkRun
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if js, ok := strings.CutPrefix(sc.Text(), wrkResultMark); ok {
			if err := json.Unmarshal([]byte(js), &r); err != nil {
				return r, fmt.Errorf("wrk's result line: %w: %q", err, js)
			}
			return r, nil
		}
	}
	return r, fmt.Errorf("no result line in wrk's output:\n%s", out)
}
