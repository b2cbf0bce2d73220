// Package project is what the indigo command's project commands (init,
// add, module new, modules list, db generate) share: a line-based editor for
// indigo.toml that keeps comments, module manifests and scope checks, and
// the files a project is scaffolded from.
package project

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// Doc is a TOML file held as lines. BurntSushi/toml drops comments when it
// writes, so edits are made on the text: a changed line keeps its
// indentation and trailing comment, and every other line stays
// byte-identical. Doc understands enough TOML to find tables, keys and
// values (multi-line strings and arrays included); SaveConfig checks the
// result with the real loader before it reaches the disk.
type Doc struct {
	lines    []string // without "\n"; a CRLF file keeps its "\r"
	crlf     bool
	finalEOL bool
}

// ParseDoc reads a file's bytes.
func ParseDoc(b []byte) *Doc {
	s := string(b)
	d := &Doc{crlf: strings.Contains(s, "\r\n")}
	if s == "" {
		return d
	}
	d.lines = strings.Split(s, "\n")
	if d.lines[len(d.lines)-1] == "" {
		d.lines = d.lines[:len(d.lines)-1]
		d.finalEOL = true
	}
	return d
}

// Bytes is the file's content.
func (d *Doc) Bytes() []byte {
	if len(d.lines) == 0 {
		return nil
	}
	s := strings.Join(d.lines, "\n")
	if d.finalEOL {
		s += "\n"
	}
	return []byte(s)
}

type lineKind int

const (
	kindOther    lineKind = iota // blank or comment
	kindHeader                   // [table] or [[array]]
	kindKeyValue                 // key = value
	kindCont                     // inside a value that spans lines
)

type lineInfo struct {
	kind  lineKind
	name  string // header: the table's name, dotted, unquoted
	array bool   // header: [[name]]
	hdr   int    // the header line whose section this line is in; -1: root
	key   string // key/value: the dotted key
	// vStart and vEnd delimit a one-line value; vEnd is -1 when the value
	// goes on over the next lines.
	vStart, vEnd int
}

type scanState struct {
	mlBasic, mlLiteral bool
	depth              int
}

func (s scanState) open() bool { return s.mlBasic || s.mlLiteral || s.depth > 0 }

// scanValue follows TOML value syntax through s from state st: strings,
// multi-line strings, nested arrays and inline tables. It returns the state
// at the end of the line and where a comment starts (len(s) for none).
func scanValue(s string, st scanState) (scanState, int) {
	i := 0
	for i < len(s) {
		switch {
		case st.mlBasic:
			switch {
			case s[i] == '\\':
				i += 2
			case strings.HasPrefix(s[i:], `"""`):
				i += quoteRun(s[i:], '"')
				st.mlBasic = false
			default:
				i++
			}
		case st.mlLiteral:
			if strings.HasPrefix(s[i:], "'''") {
				i += quoteRun(s[i:], '\'')
				st.mlLiteral = false
			} else {
				i++
			}
		default:
			switch c := s[i]; c {
			case '#':
				return st, i
			case '"':
				if strings.HasPrefix(s[i:], `"""`) {
					st.mlBasic = true
					i += 3
					continue
				}
				i++
				for i < len(s) && s[i] != '"' {
					if s[i] == '\\' {
						i++
					}
					i++
				}
				i++
			case '\'':
				if strings.HasPrefix(s[i:], "'''") {
					st.mlLiteral = true
					i += 3
					continue
				}
				i++
				for i < len(s) && s[i] != '\'' {
					i++
				}
				i++
			case '[', '{':
				st.depth++
				i++
			case ']', '}':
				if st.depth > 0 {
					st.depth--
				}
				i++
			default:
				i++
			}
		}
	}
	return st, len(s)
}

// quoteRun is the length of the run of q at the start of s, at most 5: a
// multi-line string may end with one or two quotes before its delimiter.
func quoteRun(s string, q byte) int {
	n := 0
	for n < len(s) && n < 5 && s[n] == q {
		n++
	}
	return n
}

// splitKey splits a dotted key ("a.b", `"a.b".c`, "a . b") into its parts.
func splitKey(k string) []string {
	var parts []string
	var cur strings.Builder
	inQ := byte(0)
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case inQ != 0:
			if c == inQ {
				inQ = 0
			} else {
				if c == '\\' && inQ == '"' && i+1 < len(k) {
					i++
					c = k[i]
				}
				cur.WriteByte(c)
			}
		case c == '"' || c == '\'':
			inQ = c
		case c == '.':
			parts = append(parts, cur.String())
			cur.Reset()
		case c == ' ' || c == '\t':
		default:
			cur.WriteByte(c)
		}
	}
	return append(parts, cur.String())
}

func normKey(k string) string { return strings.Join(splitKey(strings.TrimSpace(k)), ".") }

// findEquals returns the index of the '=' ending a key, outside quotes.
func findEquals(s string) int {
	inQ := byte(0)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case inQ != 0:
			if c == '\\' && inQ == '"' {
				i++
			} else if c == inQ {
				inQ = 0
			}
		case c == '"' || c == '\'':
			inQ = c
		case c == '=':
			return i
		case c == '#':
			return -1
		}
	}
	return -1
}

// parseHeader reads "[a.b]" or "[[a]]" with an optional trailing comment.
func parseHeader(t string) (name string, array bool, ok bool) {
	array = strings.HasPrefix(t, "[[")
	open := 1
	if array {
		open = 2
	}
	inQ := byte(0)
	for i := open; i < len(t); i++ {
		c := t[i]
		switch {
		case inQ != 0:
			if c == '\\' && inQ == '"' {
				i++
			} else if c == inQ {
				inQ = 0
			}
		case c == '"' || c == '\'':
			inQ = c
		case c == ']':
			end := i + 1
			if array {
				if !strings.HasPrefix(t[i:], "]]") {
					return "", false, false
				}
				end = i + 2
			}
			rest := strings.TrimSpace(t[end:])
			if rest != "" && !strings.HasPrefix(rest, "#") {
				return "", false, false
			}
			return normKey(t[open:i]), array, true
		}
	}
	return "", false, false
}

// scan classifies every line.
func (d *Doc) scan() []lineInfo {
	infos := make([]lineInfo, len(d.lines))
	var st scanState
	hdr := -1
	for i, l := range d.lines {
		info := lineInfo{hdr: hdr, vEnd: -1}
		if st.open() {
			info.kind = kindCont
			st, _ = scanValue(l, st)
			infos[i] = info
			continue
		}
		t := strings.TrimSpace(l)
		switch {
		case t == "" || strings.HasPrefix(t, "#"):
			info.kind = kindOther
		case strings.HasPrefix(t, "["):
			if name, array, ok := parseHeader(t); ok {
				info.kind, info.name, info.array = kindHeader, name, array
				hdr = i
				info.hdr = i
			}
		default:
			eq := findEquals(l)
			if eq < 0 {
				break // not TOML; the loader will say so
			}
			info.kind = kindKeyValue
			info.key = normKey(l[:eq])
			start := eq + 1
			for start < len(l) && (l[start] == ' ' || l[start] == '\t') {
				start++
			}
			info.vStart = start
			var c int
			st, c = scanValue(l[start:], scanState{})
			if !st.open() {
				info.vEnd = start + len(strings.TrimRight(l[start:start+c], " \t\r"))
			}
		}
		infos[i] = info
	}
	return infos
}

// section is a table's lines: its header (-1 for the root table) and the
// body up to the next header.
type section struct{ hdr, start, end int } // body is lines[start:end]

func sectionAt(infos []lineInfo, hdr int) section {
	end := len(infos)
	for i := hdr + 1; i < len(infos); i++ {
		if infos[i].kind == kindHeader {
			end = i
			break
		}
	}
	return section{hdr: hdr, start: hdr + 1, end: end}
}

func (d *Doc) table(infos []lineInfo, name string) (section, bool) {
	if name == "" {
		return sectionAt(infos, -1), true
	}
	for i, in := range infos {
		if in.kind == kindHeader && !in.array && in.name == name {
			return sectionAt(infos, i), true
		}
	}
	return section{}, false
}

// Lookup returns the value text of key in [table] as written (for a
// one-line value), and whether the key is there.
func (d *Doc) Lookup(table, key string) (string, bool) {
	infos := d.scan()
	sec, ok := d.table(infos, table)
	if !ok {
		return "", false
	}
	for i := sec.start; i < sec.end; i++ {
		if in := infos[i]; in.kind == kindKeyValue && in.key == key {
			if in.vEnd < 0 {
				return d.lines[i][in.vStart:], true
			}
			return d.lines[i][in.vStart:in.vEnd], true
		}
	}
	return "", false
}

// SetOptions change how Set treats a missing key.
type SetOptions struct {
	// Uncomment turns a commented-out "# key = ..." line of the table into
	// the key, instead of adding a line.
	Uncomment bool
}

// Set makes key in [table] hold value, which is TOML text (see Quote and
// Bool). A missing table is added after its parent table when there is
// one, else at the end. It reports whether anything changed.
func (d *Doc) Set(table, key, value string, opts SetOptions) (bool, error) {
	infos := d.scan()
	sec, ok := d.table(infos, table)
	if !ok {
		d.addTable(infos, table, []string{key + " = " + value})
		return true, nil
	}
	return d.setIn(infos, sec, key, value, opts)
}

func (d *Doc) setIn(infos []lineInfo, sec section, key, value string, opts SetOptions) (bool, error) {
	for i := sec.start; i < sec.end; i++ {
		in := infos[i]
		if in.kind != kindKeyValue || in.key != key {
			continue
		}
		if in.vEnd < 0 {
			return false, fmt.Errorf("line %d: %s spans several lines; edit it by hand", i+1, key)
		}
		l := d.lines[i]
		if l[in.vStart:in.vEnd] == value {
			return false, nil
		}
		d.lines[i] = l[:in.vStart] + value + l[in.vEnd:]
		return true, nil
	}
	newLine := key + " = " + value
	if opts.Uncomment {
		re := regexp.MustCompile(`^(\s*)#\s*` + regexp.QuoteMeta(key) + `\s*=`)
		for i := sec.start; i < sec.end; i++ {
			if infos[i].kind == kindOther {
				if m := re.FindStringSubmatch(d.lines[i]); m != nil {
					d.lines[i] = m[1] + newLine + d.eol()
					return true, nil
				}
			}
		}
	}
	at, indent := sec.start, ""
	for i := sec.start; i < sec.end; i++ {
		switch infos[i].kind {
		case kindKeyValue:
			at = i + 1
			l := d.lines[i]
			indent = l[:len(l)-len(strings.TrimLeft(l, " \t"))]
		case kindCont:
			at = i + 1
		}
	}
	d.insert(at, indent+newLine)
	return true, nil
}

// SuggestKey adds the commented-out line "# key = value" to [table], as a
// hint, unless the table already sets key or suggests it. The table must
// exist. It reports whether the line was added.
func (d *Doc) SuggestKey(table, key, value string) (bool, error) {
	infos := d.scan()
	sec, ok := d.table(infos, table)
	if !ok {
		return false, fmt.Errorf("no [%s] table", table)
	}
	re := regexp.MustCompile(`^\s*#\s*` + regexp.QuoteMeta(key) + `\s*=`)
	at := sec.start
	for i := sec.start; i < sec.end; i++ {
		switch infos[i].kind {
		case kindKeyValue:
			if infos[i].key == key {
				return false, nil
			}
			at = i + 1
		case kindCont:
			at = i + 1
		case kindOther:
			if re.MatchString(d.lines[i]) {
				return false, nil
			}
		}
	}
	d.insert(at, "# "+key+" = "+value)
	return true, nil
}

// eol is "\r" in a CRLF file, so that an added line ends like the others.
func (d *Doc) eol() string {
	if d.crlf {
		return "\r"
	}
	return ""
}

func (d *Doc) insert(at int, lines ...string) {
	for i := range lines {
		lines[i] += d.eol()
	}
	d.lines = append(d.lines[:at], append(lines, d.lines[at:]...)...)
}

// addTable adds "[name]" with its lines, after the parent table's keys
// when the parent exists, else at the end of the file.
func (d *Doc) addTable(infos []lineInfo, name string, body []string) {
	block := append([]string{"[" + name + "]"}, body...)
	if dot := strings.LastIndex(name, "."); dot > 0 {
		if sec, ok := d.table(infos, name[:dot]); ok {
			at := sec.start
			for i := sec.start; i < sec.end; i++ {
				if k := infos[i].kind; k == kindKeyValue || k == kindCont {
					at = i + 1
				}
			}
			block = append([]string{""}, block...)
			if at < len(d.lines) && strings.TrimSpace(d.lines[at]) != "" {
				block = append(block, "")
			}
			d.insert(at, block...)
			return
		}
	}
	d.appendBlock(block)
}

// appendBlock adds lines at the end, after a blank line.
func (d *Doc) appendBlock(block []string) {
	if n := len(d.lines); n > 0 && strings.TrimSpace(d.lines[n-1]) != "" {
		block = append([]string{""}, block...)
	}
	d.insert(len(d.lines), block...)
	d.finalEOL = true
}

// ModuleEntry is what `indigo add` records in a [[modules]] block.
type ModuleEntry struct {
	Name   string
	Path   string
	SHA256 string
	// Source is where a published module came from ("path@version"); it is
	// kept as a "# source = ..." comment right above the block, since
	// [[modules]] has no such key. "" (a local module) removes the comment.
	Source string
}

var sourceRE = regexp.MustCompile(`^\s*#\s*source\s*=`)

// Modules lists the names of the [[modules]] blocks, in file order.
func (d *Doc) Modules() []string {
	infos := d.scan()
	var names []string
	for i, in := range infos {
		if in.kind == kindHeader && in.array && in.name == "modules" {
			if n, ok := d.stringIn(infos, sectionAt(infos, i), "name"); ok {
				names = append(names, n)
			}
		}
	}
	return names
}

func (d *Doc) stringIn(infos []lineInfo, sec section, key string) (string, bool) {
	for i := sec.start; i < sec.end; i++ {
		if in := infos[i]; in.kind == kindKeyValue && in.key == key && in.vEnd >= 0 {
			var v struct{ V string }
			if _, err := toml.Decode("V = "+d.lines[i][in.vStart:in.vEnd], &v); err == nil {
				return v.V, true
			}
		}
	}
	return "", false
}

// SetModule updates the [[modules]] block named e.Name (its path and
// sha256, and the source comment; other keys and its [modules.config] stay
// as they are) or appends a new block at the end. It reports whether
// anything changed.
func (d *Doc) SetModule(e ModuleEntry) (bool, error) {
	infos := d.scan()
	for i, in := range infos {
		if in.kind != kindHeader || !in.array || in.name != "modules" {
			continue
		}
		sec := sectionAt(infos, i)
		if n, ok := d.stringIn(infos, sec, "name"); !ok || n != e.Name {
			continue
		}
		changed := false
		for _, kv := range [][2]string{{"path", e.Path}, {"sha256", e.SHA256}} {
			c, err := d.setIn(infos, sec, kv[0], Quote(kv[1]), SetOptions{})
			if err != nil {
				return false, err
			}
			if c {
				changed = true
				infos = d.scan()
				sec = sectionAt(infos, i)
			}
		}
		// The comment run right above the header.
		src := -1
		for j := i - 1; j >= 0 && infos[j].kind == kindOther && strings.HasPrefix(strings.TrimSpace(d.lines[j]), "#"); j-- {
			if sourceRE.MatchString(d.lines[j]) {
				src = j
				break
			}
		}
		want := "# source = " + Quote(e.Source)
		switch {
		case e.Source == "" && src >= 0:
			d.lines = append(d.lines[:src], d.lines[src+1:]...)
			changed = true
		case e.Source != "" && src < 0:
			d.insert(i, want)
			changed = true
		case e.Source != "" && strings.TrimRight(d.lines[src], "\r") != want:
			d.lines[src] = want + d.eol()
			changed = true
		}
		return changed, nil
	}
	var block []string
	if e.Source != "" {
		block = append(block, "# source = "+Quote(e.Source))
	}
	block = append(block, "[[modules]]", "name = "+Quote(e.Name), "path = "+Quote(e.Path), "sha256 = "+Quote(e.SHA256))
	d.appendBlock(block)
	return true, nil
}

// Quote writes s as a TOML basic string.
func Quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// Bool writes a TOML boolean.
func Bool(v bool) string { return strconv.FormatBool(v) }
