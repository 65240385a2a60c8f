// Package goast holds what the repository's checks share about Go syntax.
package goast

import "go/ast"

// ReceiverType returns the name of a method receiver's type: T for T, *T,
// T[P] and *T[P, Q]; "" for anything else.
func ReceiverType(t ast.Expr) string {
	for {
		switch x := t.(type) {
		case *ast.StarExpr:
			t = x.X
		case *ast.IndexExpr:
			t = x.X
		case *ast.IndexListExpr:
			t = x.X
		case *ast.Ident:
			return x.Name
		default:
			return ""
		}
	}
}
