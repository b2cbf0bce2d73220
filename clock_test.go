package indigo

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// wallClockMark is the comment that allows a wall-clock read on its line
// or the line above, with the reason after it.
const wallClockMark = "wall clock:"

// wallClockReads lists the places in one file that read the wall clock
// (time.Now, time.Since, time.Until) where a test could not move it:
//   - time.Now as a value is the real clock handed to code that takes a
//     clock; it may only be the default (`if now == nil { now = time.Now }`)
//     or be wired in func main. Anywhere else it bypasses a clock that a
//     test injects, as the subscriptions admin command once did.
//   - a call needs a `// wall clock: why` comment: a duration measured for a
//     log line, or a time that must be real (a licence, a signature).
func wallClockReads(fset *token.FileSet, f *ast.File) []string {
	timeName := ""
	for _, imp := range f.Imports {
		if p, _ := strconv.Unquote(imp.Path.Value); p == "time" {
			timeName = "time"
			if imp.Name != nil {
				timeName = imp.Name.Name
			}
		}
	}
	if timeName == "" || timeName == "_" {
		return nil
	}
	marked := map[int]bool{}
	for _, cg := range f.Comments {
		for _, c := range cg.List {
			if strings.Contains(c.Text, wallClockMark) {
				line := fset.Position(c.Slash).Line
				marked[line], marked[line+1] = true, true
			}
		}
	}
	var found []string
	var stack []ast.Node
	ast.Inspect(f, func(n ast.Node) bool {
		if n == nil {
			stack = stack[:len(stack)-1]
			return true
		}
		stack = append(stack, n)
		sel, ok := n.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		id, ok := sel.X.(*ast.Ident)
		if !ok || id.Name != timeName || id.Obj != nil {
			return true
		}
		name := sel.Sel.Name
		if name != "Now" && name != "Since" && name != "Until" {
			return true
		}
		pos := fset.Position(sel.Pos())
		if marked[pos.Line] {
			return true
		}
		parent := stack[len(stack)-2]
		called := false
		if call, ok := parent.(*ast.CallExpr); ok && call.Fun == n {
			called = true
		}
		switch {
		case called:
			found = append(found, fmt.Sprintf("%s:%d: time.%s() reads the wall clock: take the clock the code already has, or say why with // %s", pos.Filename, pos.Line, name, wallClockMark))
		case name == "Now" && (inFuncMain(stack) || isNilDefault(stack)):
		default:
			found = append(found, fmt.Sprintf("%s:%d: time.Now passed as a clock outside func main or a nil default: pass the clock the caller was given", pos.Filename, pos.Line))
		}
		return true
	})
	return found
}

func inFuncMain(stack []ast.Node) bool {
	for _, n := range stack {
		if fd, ok := n.(*ast.FuncDecl); ok && fd.Recv == nil && fd.Name.Name == "main" {
			return true
		}
	}
	return false
}

// isNilDefault reports whether the innermost statement is `x = time.Now`
// directly inside `if x == nil { … }`.
func isNilDefault(stack []ast.Node) bool {
	for i := len(stack) - 1; i >= 2; i-- {
		as, ok := stack[i].(*ast.AssignStmt)
		if !ok {
			continue
		}
		ifs, ok := stack[i-2].(*ast.IfStmt)
		if !ok || len(as.Lhs) != 1 {
			return false
		}
		cond, ok := ifs.Cond.(*ast.BinaryExpr)
		if !ok || cond.Op != token.EQL {
			return false
		}
		nilIdent, ok := cond.Y.(*ast.Ident)
		return ok && nilIdent.Name == "nil" && types(cond.X) == types(as.Lhs[0])
	}
	return false
}

// types renders a short expression (an identifier or a field) for comparison.
func types(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.Ident:
		return e.Name
	case *ast.SelectorExpr:
		return types(e.X) + "." + e.Sel.Name
	}
	return fmt.Sprintf("%T", e)
}

// Every test that pins a date must control every clock the code under test
// reads; this keeps production code from reading the wall clock behind an
// injected one.
func TestNoWallClockBehindAnInjectedClock(t *testing.T) {
	fset := token.NewFileSet()
	files := 0
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", ".indigo", "node_modules", "testdata", "data", "plugins", "bin":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, parser.ParseComments)
		if err != nil {
			return err
		}
		if ast.IsGenerated(f) {
			return nil
		}
		files++
		for _, msg := range wallClockReads(fset, f) {
			t.Error(msg)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 80 {
		t.Fatalf("read only %d Go files: is the walk rooted at the repository?", files)
	}
}

// The check itself: the mistake it exists for is found, and what it allows
// is allowed.
func TestWallClockCheckFindsTheMistake(t *testing.T) {
	cases := []struct {
		name, src string
		want      int
	}{
		{"clock passed past the injected one", `package p
import "time"
func admin(now func() time.Time) { openStore(time.Now) }`, 1},
		{"direct call", `package p
import "time"
func f() time.Time { return time.Now() }`, 1},
		{"Since without a reason", `package p
import "time"
func f(t time.Time) time.Duration { return time.Since(t) }`, 1},
		{"renamed import", `package p
import tm "time"
func f() { _ = tm.Now() }`, 1},
		{"nil default", `package p
import "time"
type s struct{ now func() time.Time }
func New(now func() time.Time) *s {
	if now == nil {
		now = time.Now
	}
	x := &s{}
	if x.now == nil {
		x.now = time.Now
	}
	return &s{now: now}
}`, 0},
		{"default for another variable", `package p
import "time"
func New(now, other func() time.Time) {
	if other == nil {
		now = time.Now
	}
}`, 1},
		{"wired in main", `package p
import "time"
func main() { run(time.Now) }`, 0},
		{"call with a reason", `package p
import "time"
func f() {
	// wall clock: how long the build took, for the log
	start := time.Now()
	_ = time.Since(start) // wall clock: same
}`, 0},
		{"a local named time", `package p
type clock struct{}
func (clock) Now() int { return 0 }
func f() { time := clock{}; _ = time.Now() }`, 0},
	}
	for _, c := range cases {
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, "x.go", c.src, parser.ParseComments)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := wallClockReads(fset, f); len(got) != c.want {
			t.Errorf("%s: %d findings %q, want %d", c.name, len(got), got, c.want)
		}
	}
}
