package apikey

import (
	"log/slog"
	"sync"
	"time"

	"github.com/indigo-hq/indigo/core/apikey/keycache"
	"github.com/indigo-hq/indigo/core/audit"
	"github.com/indigo-hq/indigo/core/ratelimit"
	"github.com/indigo-hq/indigo/core/scope"
	"github.com/indigo-hq/indigo/db"
)

// MaxMetadata is the largest metadata object a key may carry.
const MaxMetadata = 4096

// Settings are the key defaults from [api].
type Settings struct {
	Prefix           string
	RollGrace        time.Duration
	DefaultRateLimit *RateLimit
	// QueryTimeout bounds verify's database lookup of an uncached key
	// (0: only the caller's context bounds it).
	QueryTimeout time.Duration
}

// Actor is who performs a management action, for the audit log and for the
// rule that a key cannot revoke, roll or disable itself.
type Actor = audit.Actor

// The verify cache's bounds: cacheTTL is how long a record is trusted
// without a change-feed event (a backstop; invalidation is what makes
// changes immediate), maxNegative how many misses are remembered.
const (
	cacheTTL    = 5 * time.Minute
	maxNegative = 10000
)

// Service is the API-key store and verifier of one host or CLI process.
type Service struct {
	store    *db.Store
	scopes   *scope.Registry
	settings Settings
	now      func() time.Time
	log      *slog.Logger

	cache    *keycache.Cache[Record]
	known    *knownKeys // the stored keys, so that a made-up one costs no lookup
	limiter  ratelimit.Admitter
	keyLimit KeyLimiter // the plan's key limit; none when nil
	usage    sync.Map   // key id -> *usage

	flushMu sync.Mutex

	notifyWake func() // called after a change with key events commits
}

// DefaultRateLimit is the limit a key created without one gets; nil for none.
func (s *Service) DefaultRateLimit() *RateLimit { return s.settings.DefaultRateLimit }

// New returns a service. now is the clock (time.Now in production).
func New(store *db.Store, scopes *scope.Registry, settings Settings, now func() time.Time, log *slog.Logger) *Service {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.Default()
	}
	return &Service{
		store: store, scopes: scopes, settings: settings, now: now, log: log,
		cache: keycache.New[Record](cacheTTL, maxNegative), limiter: ratelimit.New(), known: newKnownKeys(),
	}
}

// SetLimiter replaces this process's limiter (a ratelimit.Shared when
// several hosts share Redis). Call it before serving.
func (s *Service) SetLimiter(l ratelimit.Admitter) { s.limiter = l }

// Now is the service clock.
func (s *Service) Now() time.Time { return s.now() }

// Scopes is the registry keys are checked against.
func (s *Service) Scopes() *scope.Registry { return s.scopes }

// SetKeyLimiter makes Create enforce the plan's key limit. Call it before
// the host serves.
func (s *Service) SetKeyLimiter(l KeyLimiter) { s.keyLimit = l }

// SetNotifyWake has wake called after every committed change that wrote key
// events (the notification dispatcher's Wake). Call it before the host
// serves.
func (s *Service) SetNotifyWake(wake func()) { s.notifyWake = wake }

func (s *Service) wakeNotify() {
	if s.notifyWake != nil {
		s.notifyWake()
	}
}

// Store is the database this service uses.
func (s *Service) Store() *db.Store { return s.store }
