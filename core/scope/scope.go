// Package scope is the registry of permission scopes. Core and every module
// register their scopes here; a key's scopes are checked against it.
package scope

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
)

// Scope is one permission, such as projects:read.
type Scope struct {
	ID     string `json:"id"`
	Label  string `json:"label"`
	Module string `json:"module"`
}

// Group is the scopes of one module.
type Group struct {
	Module string  `json:"module"`
	Scopes []Scope `json:"scopes"`
}

var idRE = regexp.MustCompile(`^[a-z][a-z0-9-]*:[a-z][a-z0-9-]*$`)

// Registry holds every known scope. It is safe for concurrent use.
type Registry struct {
	mu     sync.RWMutex
	byID   map[string]Scope
	owners map[string]string // id prefix -> module
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{byID: map[string]Scope{}, owners: map[string]string{}}
}

// Core's own scopes, registered through the same path modules use.
var Core = []Scope{
	{ID: "api-keys:read", Label: "Read API keys and their stats", Module: "core"},
	{ID: "api-keys:write", Label: "Create, change, roll and revoke API keys", Module: "core"},
	{ID: "api-keys:verify", Label: "Verify API keys for other services", Module: "core"},
}

// NewWithCore returns a registry holding core's scopes.
func NewWithCore() *Registry {
	r := NewRegistry()
	if err := r.Register("core", "api-keys", Core...); err != nil {
		panic(err)
	}
	return r
}

// Register adds a module's scopes. Every id must start with the module's
// prefix; a duplicate id, or a prefix owned by another module, is an error
// and nothing is registered.
func (r *Registry) Register(module, prefix string, scopes ...Scope) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if owner, ok := r.owners[prefix]; ok && owner != module {
		return fmt.Errorf("scope prefix %q belongs to module %q, not %q", prefix, owner, module)
	}
	seen := map[string]bool{}
	for _, s := range scopes {
		if !idRE.MatchString(s.ID) {
			return fmt.Errorf("module %q: scope id %q must look like name:action", module, s.ID)
		}
		if p, _, _ := strings.Cut(s.ID, ":"); p != prefix {
			return fmt.Errorf("module %q: scope %q is outside its prefix %q", module, s.ID, prefix+":")
		}
		if _, dup := r.byID[s.ID]; dup || seen[s.ID] {
			return fmt.Errorf("module %q: scope %q is already registered", module, s.ID)
		}
		seen[s.ID] = true
	}
	r.owners[prefix] = module
	for _, s := range scopes {
		s.Module = module
		r.byID[s.ID] = s
	}
	return nil
}

// Unknown returns the ids that are not registered, in input order.
func (r *Registry) Unknown(ids []string) []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []string
	for _, id := range ids {
		if _, ok := r.byID[id]; !ok {
			out = append(out, id)
		}
	}
	return out
}

// Has reports whether id is registered.
func (r *Registry) Has(id string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	_, ok := r.byID[id]
	return ok
}

// List returns every scope, sorted by id.
func (r *Registry) List() []Scope {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]Scope, 0, len(r.byID))
	for _, s := range r.byID {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Groups returns the scopes grouped by module, core first.
func (r *Registry) Groups() []Group {
	var groups []Group
	idx := map[string]int{}
	for _, s := range r.List() {
		i, ok := idx[s.Module]
		if !ok {
			i = len(groups)
			idx[s.Module] = i
			groups = append(groups, Group{Module: s.Module})
		}
		groups[i].Scopes = append(groups[i].Scopes, s)
	}
	sort.SliceStable(groups, func(i, j int) bool {
		if groups[i].Module == "core" || groups[j].Module == "core" {
			return groups[i].Module == "core"
		}
		return groups[i].Module < groups[j].Module
	})
	return groups
}

// Grants reports whether a key's scopes cover every required scope. nil
// key scopes is a superkey; an empty list grants nothing.
func Grants(keyScopes []string, superkey bool, required []string) bool {
	if superkey {
		return true
	}
	for _, need := range required {
		found := false
		for _, have := range keyScopes {
			if have == need {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}
