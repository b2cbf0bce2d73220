package sdk

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/indigo-hq/indigo/sdk/internal/route"
	"github.com/indigo-hq/indigo/sdk/rpc"
)

var (
	nameRE   = regexp.MustCompile(`^[a-z][a-z0-9-]{1,31}$`)
	methodRE = regexp.MustCompile(`^[A-Z]+$`)
	taskRE   = regexp.MustCompile(`^[a-z][a-z0-9-]{0,63}$`)
	// reservedNames are the host's own: the first segments of its
	// /api/v2 routes and its scope prefix. A module of one of these names
	// would share routes or scopes with the core (a host test keeps the
	// list in step with the core's routes).
	reservedNames = map[string]bool{"keys": true, "me": true, "scopes": true, "api-keys": true}
	// scopeIDRE is a scope id as the host's scope registry accepts it.
	scopeIDRE = regexp.MustCompile(`^[a-z][a-z0-9-]*:[a-z][a-z0-9-]*$`)
)

// ValidateManifest reports every problem with a manifest at once, so that an
// author fixes them in one pass. Serve runs it before serving; the host may
// run it on what `describe` or Describe returned, since a binary need not
// have been built with this SDK version.
func ValidateManifest(m Manifest) error {
	var errs []error
	fail := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }

	if !nameRE.MatchString(m.Name) {
		fail("module name %q must match %s", m.Name, nameRE)
	}
	if reservedNames[m.Name] {
		fail("module name %q is the host's own", m.Name)
	}
	prefix := m.Name + ":"
	declared := make(map[string]bool, len(m.Scopes))
	for _, s := range m.Scopes {
		switch {
		case !strings.HasPrefix(s.ID, prefix) || len(s.ID) == len(prefix):
			fail("scope %q must be %q followed by a name", s.ID, prefix)
		case !scopeIDRE.MatchString(s.ID):
			fail("scope %q must match %s", s.ID, scopeIDRE)
		case declared[s.ID]:
			fail("scope %q is declared twice", s.ID)
		}
		declared[s.ID] = true
	}

	tasks := map[string]bool{}
	for _, t := range m.Tasks {
		switch {
		case !taskRE.MatchString(t.Name):
			fail("task %q: name must match %s", t.Name, taskRE)
		case tasks[t.Name]:
			fail("task %q is declared twice", t.Name)
		case t.IntervalSeconds < 1:
			fail("task %q: interval must be at least one second", t.Name)
		}
		tasks[t.Name] = true
	}

	for _, h := range m.Hooks {
		switch h {
		case HookDeductAPICallToken, HookKeyLimit, HookResolveOrgID, HookKeyEvents, HookRunTask:
		default:
			fail("hook %q is not one the host knows", h)
		}
	}

	routes := make(map[string]string, len(m.Routes))
	for _, r := range m.Routes {
		where := fmt.Sprintf("route %s %s", r.Method, r.Path)
		if !methodRE.MatchString(r.Method) {
			fail("%s: method must be an upper-case HTTP method", where)
		}
		if strings.HasPrefix(r.Path, "/api/") {
			fail("%s: path is already below /api/v2; drop the prefix", where)
		}
		tpl, err := route.Parse(r.Path)
		if err != nil {
			fail("%s: path %v", where, err)
		} else {
			key := r.Method + " " + tpl.Key()
			if prev, dup := routes[key]; dup {
				fail("%s: duplicates route %s %s", where, r.Method, prev)
			} else {
				routes[key] = r.Path
			}
		}
		// Only a V1 GET may go without scopes: v1 keys predate scopes, and
		// an open write route is always a mistake.
		if len(r.Scopes) == 0 && (!r.V1 || r.Method != "GET") {
			fail("%s: needs at least one scope (only a V1 GET route may have none)", where)
		}
		for _, s := range r.Scopes {
			// Another module's or the host's scope is checked by the host
			// at load; one of our own must be declared, or it is a typo.
			switch {
			case s == "" || (strings.HasPrefix(s, prefix) && !declared[s]):
				fail("%s: scope %q is not declared by the module", where, s)
			case !scopeIDRE.MatchString(s):
				fail("%s: scope %q is not a scope id (name:action)", where, s)
			}
		}
		if r.Cost < 0 {
			fail("%s: cost must not be negative", where)
		}
	}
	return errors.Join(errs...)
}

// CheckManifest is the one check of a module's manifest, used by the SDK's
// tests, the host's loader and `indigo add`: that the binary is the module
// it is configured as (name), speaks this SDK's protocol, follows
// ValidateManifest's rules, and serves routes only below /<name>, so that
// no module can shadow the core or another module.
func CheckManifest(name string, m Manifest) error {
	if m.Name != name {
		return fmt.Errorf("the binary says it is module %q, not %q", m.Name, name)
	}
	if m.Protocol != rpc.ProtocolVersion {
		return fmt.Errorf("module %q speaks protocol %d, this host speaks %d: rebuild it against this SDK", name, m.Protocol, rpc.ProtocolVersion)
	}
	if err := ValidateManifest(m); err != nil {
		return fmt.Errorf("invalid manifest: %w", err)
	}
	for _, rt := range m.Routes {
		if rt.Path != "/"+name && !strings.HasPrefix(rt.Path, "/"+name+"/") {
			return fmt.Errorf("route %s %s is outside /%s", rt.Method, rt.Path, name)
		}
	}
	return nil
}

// validate adds what only the author's side can check to the manifest's
// rules.
func (m Module) validate() error {
	err := ValidateManifest(m.Manifest())
	if m.Handler == nil {
		for _, r := range m.Routes {
			if r.Handler == nil {
				err = errors.Join(err, fmt.Errorf("route %s %s has no Handler, and the module has none", r.Method, r.Path))
			}
		}
	}
	for _, t := range m.Tasks {
		if t.Run == nil {
			err = errors.Join(err, fmt.Errorf("task %q has no Run", t.Name))
		}
		if t.Every%time.Second != 0 {
			err = errors.Join(err, fmt.Errorf("task %q: Every must be whole seconds", t.Name))
		}
	}
	if m.Migrations != nil && !m.Database {
		err = errors.Join(err, errors.New("module has Migrations but does not ask for a Database"))
	}
	if err != nil {
		return fmt.Errorf("invalid module %q:\n%w", m.Name, err)
	}
	return nil
}
