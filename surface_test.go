package oauth2refresh_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// The root package is the app author's: its budgets (issue 18) keep it readable from one
// screen. What only store authors or operators need lives in store/, events/ and their kin.
const (
	maxExported = 90       // types, funcs, methods of exported types, consts, vars
	maxGoDoc    = 40 << 10 // bytes of `go doc -all .`
)

// exported counts the root package's exported identifiers as the budget does: top-level
// types, funcs, consts and vars, and the methods of exported types; struct fields and
// interface methods are not counted.
func exported(t *testing.T) []string {
	t.Helper()
	fset := token.NewFileSet()
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	var files []*ast.File
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		if f.Name.Name == "oauth2refresh" {
			files = append(files, f)
		}
	}
	var names []string
	for _, f := range files {
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if !d.Name.IsExported() {
					continue
				}
				if d.Recv == nil {
					names = append(names, d.Name.Name)
					continue
				}
				typ := d.Recv.List[0].Type
				if s, ok := typ.(*ast.StarExpr); ok {
					typ = s.X
				}
				if ix, ok := typ.(*ast.IndexExpr); ok {
					typ = ix.X
				}
				if id, ok := typ.(*ast.Ident); ok && id.IsExported() {
					names = append(names, id.Name+"."+d.Name.Name)
				}
			case *ast.GenDecl:
				for _, s := range d.Specs {
					switch s := s.(type) {
					case *ast.TypeSpec:
						if s.Name.IsExported() {
							names = append(names, s.Name.Name)
						}
					case *ast.ValueSpec:
						for _, n := range s.Names {
							if n.IsExported() {
								names = append(names, n.Name)
							}
						}
					}
				}
			}
		}
	}
	return names
}

func TestSurfaceBudget(t *testing.T) {
	if names := exported(t); len(names) > maxExported {
		t.Errorf("the root package exports %d identifiers, over its budget of %d: %v", len(names), maxExported, names)
	}
	if testing.Short() {
		return
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to run go doc")
	}
	out, err := exec.Command(goCmd, "doc", "-all", ".").Output()
	if err != nil {
		t.Fatalf("go doc -all: %v", err)
	}
	if len(out) > maxGoDoc {
		t.Errorf("go doc -all is %d bytes, over its budget of %d", len(out), maxGoDoc)
	}
}
