package apitoken

import (
	_ "embed"
	"net/http"
)

// openAPIDocument is the OpenAPI 3.1 description of the admin API that
// NewHandler serves. openapi_test.go validates the handler's real responses
// against it, so a change to a route or a JSON shape must change it too.
//
//go:embed openapi.json
var openAPIDocument []byte

// OpenAPIDocument returns the OpenAPI 3.1 document (JSON) of the admin API
// served by NewHandler, for a host that publishes it elsewhere (e.g. next to
// its own API's documentation). Its servers entry is the spec's mount point,
// /api/api-tokens. The handler serves the same document at GET /openapi.json
// below its mount point, behind the Authorizer like every other route.
func OpenAPIDocument() []byte {
	return append([]byte(nil), openAPIDocument...)
}

// openAPI answers GET /openapi.json.
func (h *adminHandler) openAPI(q *adminRequest) {
	writeBody(q.w, http.StatusOK, openAPIDocument)
}
