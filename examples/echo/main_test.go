package main

import (
	"testing"

	"github.com/apitoken/apitoken/examples/internal/demotest"
)

func TestExample(t *testing.T) {
	demotest.Run(t, demotest.Example{
		NewHandler:       newHandler,
		Run:              run,
		RouteProduct:     "/products/:id",
		RouteStoreBrands: "/stores/:id/brands",
	})
}
