package faults_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The projects module is killed by SIGKILL ten times while four clients
// create and list projects through the host. Each caller gets an answer
// that tells it what to do: the module's own, 502 module_outcome_unknown
// (a write in flight: check before repeating it), 503 module_unavailable
// with Retry-After (never sent: repeat it) or 504; never a 500. A 503 never
// hides a committed write: every 201's project exists at the end, and the
// projects beyond those are at most the writes whose outcome was unknown.
func TestModuleSIGKILLUnderLoad(t *testing.T) {
	const (
		workers = 4
		kills   = 10
		apart   = 400 * time.Millisecond
	)
	h := startHost(t, hostConfig{Projects: true})
	_, key := h.createKey("faults")
	c := newClient(workers)
	projects := h.url + "/api/v2/projects"

	type tally struct {
		mu           sync.Mutex
		byAnswer     map[string]int  // "POST 201", "GET 503 module_unavailable", ...
		created      map[string]bool // the ids of 201s
		unknownPosts int             // POSTs answered 502 or 504: may have been applied
		bad          []string
	}
	tl := tally{byAnswer: map[string]int{}, created: map[string]bool{}}
	record := func(method string, a answer) {
		tl.mu.Lock()
		defer tl.mu.Unlock()
		label := fmt.Sprintf("%s %d %s", method, a.status, a.code())
		if a.err != nil {
			label = fmt.Sprintf("%s error %v", method, a.err)
		}
		tl.byAnswer[label]++
		ok := false
		switch {
		case a.err != nil:
		case method == "POST" && a.status == 201:
			var p struct{ Project struct{ ID string } }
			if err := json.Unmarshal(a.body, &p); err == nil && p.Project.ID != "" {
				tl.created[p.Project.ID], ok = true, true
			}
		case method == "GET" && a.status == 200:
			ok = true
		case a.status == 502 && a.code() == "module_outcome_unknown", a.status == 504:
			ok = true
			if method == "POST" {
				tl.unknownPosts++
			}
		case a.status == 503 && a.code() == "module_unavailable" && a.header.Get("Retry-After") != "":
			ok = true
		}
		if !ok && len(tl.bad) < 20 {
			tl.bad = append(tl.bad, fmt.Sprintf("%s: %s", label, tail(string(a.body), 300)))
		}
	}

	var stop atomic.Bool
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				record("POST", c.do("POST", projects, key, map[string]string{"name": fmt.Sprintf("w%d-%d", w, i)}))
				record("GET", c.do("GET", projects, key, nil))
			}
		})
	}

	// Each kill waits for the host to have restarted the module (a new
	// process, through serverInit: the log says "module restarted").
	var restartMS []float64
	pid := h.waitModule(0, 10*time.Second)
	for i := range kills {
		time.Sleep(apart)
		kill(t, pid, syscall.SIGKILL)
		killed := time.Now()
		for strings.Count(h.stderr.String(), `msg="module restarted"`) <= i {
			if time.Since(killed) > 30*time.Second {
				t.Fatalf("the host has not restarted the module 30 s after kill %d", i+1)
			}
			time.Sleep(5 * time.Millisecond)
		}
		restartMS = append(restartMS, float64(time.Since(killed).Microseconds())/1000)
		pid = h.waitModule(pid, 5*time.Second)
	}
	// The module answers again, on its own, before the load stops.
	var back time.Duration
	for begin := time.Now(); ; time.Sleep(20 * time.Millisecond) {
		if a := c.do("GET", projects, key, nil); a.status == 200 {
			back = time.Since(begin)
			break
		}
		if time.Since(begin) > 30*time.Second {
			t.Fatal("the module does not answer 30 s after the last kill")
		}
	}
	time.Sleep(apart)
	stop.Store(true)
	wg.Wait()

	a := c.do("GET", projects, key, nil)
	if a.status != 200 {
		t.Fatalf("final list: %d %s", a.status, a.body)
	}
	var list struct{ Projects []struct{ ID string } }
	if err := json.Unmarshal(a.body, &list); err != nil {
		t.Fatal(err)
	}
	exist := map[string]bool{}
	for _, p := range list.Projects {
		exist[p.ID] = true
	}
	missing := 0
	for id := range tl.created {
		if !exist[id] {
			missing++
		}
	}

	for _, label := range slices.Sorted(maps.Keys(tl.byAnswer)) {
		t.Logf("answers %s: %d", strings.TrimSpace(label), tl.byAnswer[label])
	}
	t.Logf("module_kills: %d", kills)
	t.Logf("module_restarted_after_kill_ms: %v", restartMS)
	t.Logf("module_answers_after_last_restart_ms: %.1f", float64(back.Microseconds())/1000)
	t.Logf("projects_created_201: %d", len(tl.created))
	t.Logf("projects_outcome_unknown_posts: %d", tl.unknownPosts)
	t.Logf("projects_existing: %d", len(exist))

	for _, b := range tl.bad {
		t.Errorf("answer outside the contract: %s", b)
	}
	if missing > 0 {
		t.Errorf("%d projects answered 201 do not exist", missing)
	}
	if len(exist) < len(tl.created) || len(exist) > len(tl.created)+tl.unknownPosts {
		t.Errorf("%d projects exist; want from %d (the 201s) to %d (plus the unknown outcomes)",
			len(exist), len(tl.created), len(tl.created)+tl.unknownPosts)
	}
	if len(tl.created) == 0 {
		t.Error("no project was created under load")
	}
}
