// Command funclen fails when a function or method of the library is longer
// than -max lines (80), counted from its func keyword to its closing brace;
// a func literal counts as part of the function it is written in.
//
//	go run ./tools/funclen [-max 80] [repo root]
//
// Library code is every non-test .go file of every module of the repository
// except those under bench/, examples/, test/, tools/ and dashboard/e2e/
// (and testdata directories).
package main

import (
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/apitoken/apitoken/tools/internal/goast"
)

// skipped are the directories, relative to the root, that hold no library code.
var skipped = map[string]bool{"bench": true, "examples": true, "test": true, "tools": true, "dashboard/e2e": true}

func main() {
	limit := flag.Int("max", 80, "longest allowed function, in lines")
	flag.Parse()
	root := "."
	if flag.NArg() > 0 {
		root = flag.Arg(0)
	}
	long, err := overLong(root, *limit)
	if err != nil {
		fmt.Fprintln(os.Stderr, "funclen:", err)
		os.Exit(2)
	}
	for _, l := range long {
		fmt.Println(l)
	}
	if len(long) > 0 {
		fmt.Printf("funclen: %d functions longer than %d lines\n", len(long), *limit)
		os.Exit(1)
	}
}

// overLong lists "file:line: name is n lines" for every function longer
// than limit lines in the library files under root.
func overLong(root string, limit int) ([]string, error) {
	var out []string
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		name := d.Name()
		if d.IsDir() {
			if rel != "." && (skipped[rel] || name == "testdata" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok {
				continue
			}
			start, end := fset.Position(fn.Pos()), fset.Position(fn.End())
			if n := end.Line - start.Line + 1; n > limit {
				out = append(out, fmt.Sprintf("%s:%d: %s is %d lines", rel, start.Line, funcName(fn), n))
			}
		}
		return nil
	})
	return out, err
}

// funcName is "F" for a function, "T.M" for a method.
func funcName(fn *ast.FuncDecl) string {
	if fn.Recv == nil || len(fn.Recv.List) == 0 {
		return fn.Name.Name
	}
	if t := goast.ReceiverType(fn.Recv.List[0].Type); t != "" {
		return t + "." + fn.Name.Name
	}
	return fn.Name.Name
}
