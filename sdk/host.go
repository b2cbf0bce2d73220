package sdk

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"time"

	"github.com/indigo-hq/indigo/sdk/rpc"
)

// host is the Host a module's ServerInit receives.
type host struct {
	module     string
	config     map[string]any
	configJSON []byte
	dataDir    string
	logger     *slog.Logger
	services   rpc.HostServices
	db         *sql.DB
	engine     string
}

func newHost(module string, req rpc.InitRequest, services rpc.HostServices) (*host, error) {
	config := map[string]any{}
	if len(bytes.TrimSpace(req.ConfigJSON)) > 0 {
		if err := json.Unmarshal(req.ConfigJSON, &config); err != nil {
			return nil, fmt.Errorf("module config is not a JSON object: %w", err)
		}
		if config == nil { // the host sent null
			config = map[string]any{}
		}
	}
	if services == nil {
		services = noServices{}
	}
	return &host{
		module:     module,
		config:     config,
		configJSON: req.ConfigJSON,
		dataDir:    req.DataDir,
		logger:     slog.New(&logHandler{services: services}),
		services:   services,
	}, nil
}

func (h *host) DB() *sql.DB { return h.db }

func (h *host) Engine() string { return h.engine }

// DecodeConfig decodes the module's section strictly: an unknown key or a
// value of the wrong type is an error naming the module and the key.
func (h *host) DecodeConfig(v any) error {
	return decodeConfig(h.module, h.configJSON, v)
}

func decodeConfig(module string, raw []byte, v any) error {
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		raw = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		return nil
	}
	if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		return fmt.Errorf("module %s: config key %q: want %s, got a JSON %s", module, te.Field, te.Type, te.Value)
	}
	if key, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return fmt.Errorf("module %s: config key %s: unknown key", module, key)
	}
	return fmt.Errorf("module %s: config: %w", module, err)
}

func (h *host) Config() map[string]any { return h.config }

func (h *host) DataDir() string { return h.dataDir }

func (h *host) Logger() *slog.Logger { return h.logger }

func (h *host) Scopes(ctx context.Context) ([]RegisteredScope, error) {
	return h.services.Scopes(ctx)
}

// noServices stands in for a host that gave none (an in-process host or a
// test calling Adapt directly), so the module's code need not check.
type noServices struct{}

func (noServices) Log(context.Context, slog.Level, string, map[string]string) error { return nil }

func (noServices) Scopes(context.Context) ([]RegisteredScope, error) { return nil, nil }

// logTimeout bounds one log call: a wedged host must not stall the handler
// that logs.
const logTimeout = 5 * time.Second

// logHandler sends each record to the host as a level, a message and flat
// string attributes ("group.key"): the host owns formatting, levels to keep
// and where logs go, and a flat map of strings crosses the wire in any
// language.
type logHandler struct {
	services rpc.HostServices
	prefix   string            // the open groups, "a.b."
	attrs    map[string]string // from WithAttrs; never modified once set
}

func (h *logHandler) Enabled(context.Context, slog.Level) bool {
	// The host filters by level; the module cannot know its setting.
	return true
}

func (h *logHandler) Handle(ctx context.Context, r slog.Record) error {
	attrs := make(map[string]string, len(h.attrs)+r.NumAttrs())
	maps.Copy(attrs, h.attrs)
	r.Attrs(func(a slog.Attr) bool {
		addAttr(attrs, h.prefix, a)
		return true
	})
	if ctx == nil { // slog allows a nil context
		ctx = context.Background()
	}
	// Keep the context's values but not its cancellation: the line that
	// says a request was cancelled should still reach the host.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), logTimeout)
	defer cancel()
	return h.services.Log(ctx, r.Level, r.Message, attrs)
}

func (h *logHandler) WithAttrs(as []slog.Attr) slog.Handler {
	if len(as) == 0 {
		return h
	}
	attrs := maps.Clone(h.attrs)
	if attrs == nil {
		attrs = make(map[string]string, len(as))
	}
	for _, a := range as {
		addAttr(attrs, h.prefix, a)
	}
	return &logHandler{services: h.services, prefix: h.prefix, attrs: attrs}
}

func (h *logHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return &logHandler{services: h.services, prefix: h.prefix + name + ".", attrs: h.attrs}
}

// addAttr flattens a into attrs under prefix, following slog's rules: empty
// attributes and empty groups vanish, and a group without a key inlines.
func addAttr(attrs map[string]string, prefix string, a slog.Attr) {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return
	}
	if a.Value.Kind() == slog.KindGroup {
		if a.Key != "" {
			prefix += a.Key + "."
		}
		for _, ga := range a.Value.Group() {
			addAttr(attrs, prefix, ga)
		}
		return
	}
	attrs[prefix+a.Key] = valueString(a.Value)
}

func valueString(v slog.Value) string {
	if v.Kind() == slog.KindTime {
		return v.Time().Format(time.RFC3339Nano)
	}
	return v.String()
}
