// Command apisurface counts the exported identifiers of one package and
// fails above -max (130): exported top-level constants, variables, types and
// functions, and the exported methods of exported types. Struct fields and
// interface methods are not counted. By this count golang.org/x/time/rate
// has 28.
//
//	go run ./tools/apisurface [-v] [-max 130] [package dir]
//
// The directory defaults to "." (the root package apitoken); -v prints the
// names.
package main

import (
	"flag"
	"fmt"
	"go/ast"
	"go/build"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"sort"

	"github.com/apitoken/apitoken/tools/internal/goast"
)

func main() {
	verbose := flag.Bool("v", false, "print the exported names")
	limit := flag.Int("max", 130, "most exported identifiers allowed")
	flag.Parse()
	dir := "."
	if flag.NArg() > 0 {
		dir = flag.Arg(0)
	}
	names, err := exported(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "apisurface:", err)
		os.Exit(2)
	}
	if *verbose {
		for _, n := range names {
			fmt.Println(n)
		}
	}
	fmt.Printf("apisurface: %s exports %d identifiers (at most %d allowed)\n", dir, len(names), *limit)
	if len(names) > *limit {
		os.Exit(1)
	}
}

// exported returns the sorted exported names of the package in dir (its
// non-test files for this platform): "Name" for a top-level identifier,
// "Type.Method" for a method.
func exported(dir string) ([]string, error) {
	pkg, err := build.ImportDir(dir, 0)
	if err != nil {
		return nil, err
	}
	fset := token.NewFileSet()
	var names []string
	methods := map[string][]string{} // receiver type -> exported methods
	types := map[string]bool{}       // exported types
	for _, name := range pkg.GoFiles {
		f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		for _, decl := range f.Decls {
			switch d := decl.(type) {
			case *ast.FuncDecl:
				switch {
				case !d.Name.IsExported():
				case d.Recv == nil:
					names = append(names, d.Name.Name)
				default:
					recv := goast.ReceiverType(d.Recv.List[0].Type)
					methods[recv] = append(methods[recv], recv+"."+d.Name.Name)
				}
			case *ast.GenDecl:
				for _, spec := range d.Specs {
					switch s := spec.(type) {
					case *ast.TypeSpec:
						if s.Name.IsExported() {
							names = append(names, s.Name.Name)
							types[s.Name.Name] = true
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
	for recv, ms := range methods {
		if types[recv] {
			names = append(names, ms...)
		}
	}
	sort.Strings(names)
	return names, nil
}
