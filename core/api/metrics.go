package api

import (
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/indigo-hq/indigo/core/internal/striped"
)

// Metrics are the host's Prometheus series.
type Metrics struct {
	Registry *prometheus.Registry
	requests *hotCounters[routeStatus]
	verifies *hotCounters[string] // by result
	rejects  *prometheus.CounterVec
}

// hotCounters is a counter family bumped on every request. A client_golang
// CounterVec child is one atomic word, which every core would write in
// turn, and its lookup hashes the label values; here each label set has a
// striped counter in a copy-on-write map under a typed key, so a request
// takes no lock, allocates nothing and writes no line another core reads.
// The family is read at scrape time.
type hotCounters[K comparable] struct {
	desc *prometheus.Desc
	mu   sync.Mutex // serialises adding a label set
	idx  atomic.Pointer[map[K]*hotCounter]
}

type routeStatus struct {
	route  string
	status int
}

type hotCounter struct {
	labels []string
	n      striped.Counter
}

func newHotCounters[K comparable](name, help string, labels ...string) *hotCounters[K] {
	return &hotCounters[K]{desc: prometheus.NewDesc(name, help, labels, nil)}
}

// inc adds one to the counter of key; labels gives its label values the
// first time the key is seen.
func (h *hotCounters[K]) inc(key K, labels func() []string) {
	if m := h.idx.Load(); m != nil {
		if c, ok := (*m)[key]; ok {
			c.n.Inc()
			return
		}
	}
	h.add(key, labels).n.Inc()
}

func (h *hotCounters[K]) add(key K, labels func() []string) *hotCounter {
	h.mu.Lock()
	defer h.mu.Unlock()
	var old map[K]*hotCounter
	if p := h.idx.Load(); p != nil {
		old = *p
	}
	if c, ok := old[key]; ok {
		return c
	}
	next := make(map[K]*hotCounter, len(old)+1)
	for k, c := range old {
		next[k] = c
	}
	c := &hotCounter{labels: labels()}
	next[key] = c
	h.idx.Store(&next)
	return c
}

func (h *hotCounters[K]) Describe(ch chan<- *prometheus.Desc) { ch <- h.desc }

func (h *hotCounters[K]) Collect(ch chan<- prometheus.Metric) {
	p := h.idx.Load()
	if p == nil {
		return
	}
	for _, c := range *p {
		ch <- prometheus.MustNewConstMetric(h.desc, prometheus.CounterValue, float64(c.n.Load()), c.labels...)
	}
}

// NewMetrics registers the series. cacheStats, dropped and depth are read
// at scrape time.
func NewMetrics(cacheStats func() (hits, misses uint64), dropped func() uint64, depth func() int) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		Registry: reg,
		requests: newHotCounters[routeStatus]("indigo_api_requests_total", "API v2 requests by route and status.", "route", "status"),
		verifies: newHotCounters[string]("indigo_api_key_verifications_total", "Key verifications by result.", "result"),
		rejects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "indigo_api_rate_limit_rejections_total", Help: "Calls refused by rate limit or quota.",
		}, []string{"code"}),
	}
	reg.MustRegister(m.requests, m.verifies, m.rejects,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if cacheStats != nil {
		reg.MustRegister(
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "indigo_api_key_cache_hits_total", Help: "Verify cache hits."},
				func() float64 { h, _ := cacheStats(); return float64(h) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "indigo_api_key_cache_misses_total", Help: "Verify cache misses."},
				func() float64 { _, m := cacheStats(); return float64(m) }),
		)
	}
	if dropped != nil {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "indigo_request_log_dropped_total", Help: "Request log entries lost: the memory queue and the disk spool were both full.",
		}, func() float64 { return float64(dropped()) }))
	}
	if depth != nil {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "indigo_request_log_queue_depth", Help: "Request log entries waiting in memory to be written.",
		}, func() float64 { return float64(depth()) }))
	}
	return m
}

func (m *Metrics) request(route string, status int) {
	if m == nil {
		return
	}
	m.requests.inc(routeStatus{route, status}, func() []string { return []string{route, strconv.Itoa(status)} })
}

func (m *Metrics) verify(result string) {
	if m == nil {
		return
	}
	m.verifies.inc(result, func() []string { return []string{result} })
}

func (m *Metrics) rejected(code string) {
	if m != nil {
		m.rejects.WithLabelValues(code).Inc()
	}
}
