// Package route parses the gorilla/mux style path templates modules declare
// ("/projects/{id}", "/files/{name:[a-z]+}.json"). The host routes with
// gorilla/mux itself; the SDK needs the same reading to refuse a bad or
// duplicate template when a module starts and to route in sdktest without
// a host, and a dependency on mux for that is not worth it.
package route

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"strings"
)

// Template is a parsed path template.
type Template struct {
	re    *regexp.Regexp
	names []string
	index []int // submatch index of each name
	key   string
}

// Parse reads a template. Variables are "{name}" (one path segment) or
// "{name:pattern}"; a pattern may hold balanced braces of its own.
func Parse(tpl string) (*Template, error) {
	if !strings.HasPrefix(tpl, "/") {
		return nil, errors.New("must start with /")
	}
	var (
		re     strings.Builder
		key    strings.Builder
		sample strings.Builder // the template with each variable as "x"
		names  []string
		seen   = map[string]bool{}
	)
	re.WriteString("^")
	for i := 0; i < len(tpl); {
		open := strings.IndexByte(tpl[i:], '{')
		if closeAt := strings.IndexByte(tpl[i:], '}'); closeAt >= 0 && (open < 0 || closeAt < open) {
			return nil, fmt.Errorf("unbalanced } at %d", i+closeAt)
		}
		if open < 0 {
			re.WriteString(regexp.QuoteMeta(tpl[i:]))
			key.WriteString(tpl[i:])
			sample.WriteString(tpl[i:])
			break
		}
		re.WriteString(regexp.QuoteMeta(tpl[i : i+open]))
		key.WriteString(tpl[i : i+open])
		sample.WriteString(tpl[i:i+open] + "x")
		start := i + open
		end, err := matchingBrace(tpl, start)
		if err != nil {
			return nil, err
		}
		name, pattern, hasPattern := strings.Cut(tpl[start+1:end], ":")
		if name == "" {
			return nil, fmt.Errorf("variable at %d has no name", start)
		}
		if seen[name] {
			return nil, fmt.Errorf("variable %q appears twice", name)
		}
		seen[name] = true
		if !hasPattern {
			pattern = "[^/]+"
		}
		pre, err := regexp.Compile(pattern)
		if err != nil {
			return nil, fmt.Errorf("variable %q: %w", name, err)
		}
		// The host's router (gorilla/mux) panics on one.
		if pre.NumSubexp() > 0 {
			return nil, fmt.Errorf("variable %q: the pattern has a capturing group; write (?:...) instead", name)
		}
		// Named groups, so that capturing groups inside a pattern do not
		// shift the variables' positions.
		fmt.Fprintf(&re, "(?P<indigo%d>(?:%s))", len(names), pattern)
		names = append(names, name)
		// Two templates that differ only in variable names route the same
		// requests, so the key forgets the names but keeps the patterns.
		key.WriteString("{:" + pattern + "}")
		i = end + 1
	}
	// Outside the variables, where a pattern may use (?:...).
	if strings.ContainsAny(sample.String(), "?#") {
		return nil, errors.New("must not hold a query or fragment")
	}
	// The host's router redirects a path with an empty, "." or ".."
	// segment to its clean form, so a route written so is never reached.
	if p, c := sample.String(), path.Clean(sample.String()); p != c && (c == "/" || p != c+"/") {
		return nil, errors.New("must be a clean path: no empty, \".\" or \"..\" segment")
	}
	re.WriteString("$")
	compiled, err := regexp.Compile(re.String())
	if err != nil {
		return nil, err
	}
	index := make([]int, len(names))
	for i := range names {
		index[i] = compiled.SubexpIndex(fmt.Sprintf("indigo%d", i))
	}
	return &Template{re: compiled, names: names, index: index, key: key.String()}, nil
}

func matchingBrace(s string, open int) (int, error) {
	depth := 0
	for j := open; j < len(s); j++ {
		switch s[j] {
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				return j, nil
			}
		}
	}
	return 0, fmt.Errorf("unbalanced { at %d", open)
}

// Key is the same for templates that match the same paths by construction:
// "/p/{id}" and "/p/{pid}" share one.
func (t *Template) Key() string { return t.key }

// Match returns the variables when path matches the template.
func (t *Template) Match(path string) (map[string]string, bool) {
	m := t.re.FindStringSubmatch(path)
	if m == nil {
		return nil, false
	}
	vars := make(map[string]string, len(t.names))
	for i, name := range t.names {
		vars[name] = m[t.index[i]]
	}
	return vars, true
}
