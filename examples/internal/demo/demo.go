// Package demo holds what the example servers share, so each example shows
// only its router's wiring: the server's life cycle with a graceful
// shutdown, the admin secret, the catalogue's JSON bodies and the welcome
// text.
package demo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/apitoken/apitoken"
	"github.com/apitoken/apitoken/store/memory"
)

// BuildFunc returns an example's handler: the admin API authorized by
// adminSecret and the demo routes behind the middleware.
type BuildFunc func(m *apitoken.Manager, adminSecret string) (http.Handler, error)

// Run serves the router example name on $ADDR (default 127.0.0.1:8080) with
// a memory store until SIGINT, SIGTERM or ctx ends, then stops accepting,
// finishes the requests in flight and writes every queued usage event.
func Run(ctx context.Context, name string, getenv func(string) string, out io.Writer, build BuildFunc) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	addr := getenv("ADDR")
	if addr == "" {
		addr = "127.0.0.1:8080"
	}
	m, err := apitoken.NewManager(memory.New())
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		_ = m.Close(cctx)
	}()
	secret, generated, err := AdminSecret(getenv)
	if err != nil {
		return err
	}
	h, err := build(m, secret)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	printWelcome(out, name, "http://"+ln.Addr().String(), secret, generated)

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// AdminSecret returns $ADMIN_TOKEN, or a new random secret (generated).
func AdminSecret(getenv func(string) string) (secret string, generated bool, err error) {
	if s := getenv("ADMIN_TOKEN"); s != "" {
		return s, false, nil
	}
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", false, err
	}
	return "adm_" + hex.EncodeToString(b), true, nil
}

// SecretNote tells where the admin secret came from, for the welcome text.
func SecretNote(generated bool) string {
	if generated {
		return " (generated now: set $ADMIN_TOKEN to choose it)"
	}
	return " ($ADMIN_TOKEN)"
}

func printWelcome(out io.Writer, name, base, secret string, generated bool) {
	fmt.Fprintf(out, `apitoken %[4]s demo listening on %[1]s
admin secret%[3]s: %[2]s

Create a token, then use it:
  curl -X POST %[1]s/api/api-tokens -H "Authorization: Bearer %[2]s" -H "Content-Type: application/json" \
    -d '{"name":"WordPress Plugin - Main Site","rate_limit":200,"allowed_endpoints":["/products*","/stores*","/categories*"]}'
  curl -i %[1]s/api/products -H "Authorization: Bearer <token>"
  curl -i %[1]s/api/orders -H "Authorization: Bearer <token>"   # 403: endpoint not allowed
  curl %[1]s/api/api-tokens/1/usage?days=7 -H "Authorization: Bearer %[2]s"
`, base, secret, SecretNote(generated), name)
}

// List is a catalogue list's body: {kind: [{"id": 1, "name": …}, …]}.
func List(kind string, names ...string) map[string]any {
	items := make([]map[string]any, len(names))
	for i, n := range names {
		items[i] = map[string]any{"id": i + 1, "name": n}
	}
	return map[string]any{kind: items}
}

// Item is one catalogue item's body: {kind: {"id": id}}.
func Item(kind, id string) map[string]any {
	return map[string]any{kind: map[string]any{"id": id}}
}

// Whoami is the body of /api/whoami for the request's token.
func Whoami(tok *apitoken.Token) map[string]any {
	return map[string]any{"token_id": tok.ID, "name": tok.Name, "start": tok.Start}
}

// WriteJSON writes v as JSON, for net/http handlers.
func WriteJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
