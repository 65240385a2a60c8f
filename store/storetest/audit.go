package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/apitoken/apitoken"
)

// auditStore returns a new empty store and its AuditStore side, or skips.
func (s suite) auditStore(t *testing.T) (apitoken.Store, apitoken.AuditStore) {
	t.Helper()
	st := s.store(t)
	as, ok := st.(apitoken.AuditStore)
	if !ok {
		t.Skipf("%T does not implement apitoken.AuditStore", st)
	}
	return st, as
}

func listAudit(t *testing.T, as apitoken.AuditStore, q apitoken.AuditQuery) ([]*apitoken.AuditEntry, int) {
	t.Helper()
	entries, total, err := as.ListAudit(t.Context(), q)
	if err != nil {
		t.Fatalf("ListAudit(%+v): %v", q, err)
	}
	if entries == nil {
		t.Errorf("ListAudit(%+v) returned a nil slice", q)
	}
	return entries, total
}

// wantEntry is an expected audit entry; changes are "field: from -> to"
// with the JSON values.
type wantEntry struct {
	action, actor, name string
	at                  time.Time
	changes             []string
}

func changeText(cs []apitoken.Change) []string {
	out := []string{}
	for _, c := range cs {
		out = append(out, fmt.Sprintf("%s: %s -> %s", c.Field, c.From, c.To))
	}
	return out
}

func checkEntries(t *testing.T, id int64, want []wantEntry, got []*apitoken.AuditEntry) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d audit entries, want %d: %s", len(got), len(want), entriesText(got))
	}
	for i, w := range want {
		g := got[i]
		gc := changeText(g.Changes)
		if g.TokenID != id || g.Action != w.action || g.Actor != w.actor || g.TokenName != w.name ||
			!g.CreatedAt.Equal(w.at) || g.CreatedAt.Location() != time.UTC || strings.Join(gc, "\n") != strings.Join(w.changes, "\n") || g.Changes == nil {
			t.Errorf("entry %d:\n\tgot  token %d %s by %q on %q at %s, changes %q\n\twant token %d %s by %q on %q at %s, changes %q",
				i, g.TokenID, g.Action, g.Actor, g.TokenName, g.CreatedAt.Format(time.RFC3339Nano), gc,
				id, w.action, w.actor, w.name, w.at.UTC().Format(time.RFC3339Nano), w.changes)
		}
		if i > 0 && g.ID >= got[i-1].ID {
			t.Errorf("entry %d has id %d, not below the previous entry's %d (newest first)", i, g.ID, got[i-1].ID)
		}
	}
}

func entriesText(es []*apitoken.AuditEntry) string {
	var b strings.Builder
	for _, e := range es {
		fmt.Fprintf(&b, "\n\t%d: token %d %s by %q", e.ID, e.TokenID, e.Action, e.Actor)
	}
	return b.String()
}

// as returns a context naming actor at time at.
func as(ctx context.Context, actor string, at time.Time) context.Context {
	return apitoken.WithAuditTime(apitoken.WithActor(ctx, actor), at)
}

func (s suite) testAudit(t *testing.T) {
	t.Run("EveryChange", s.testAuditEveryChange)
	t.Run("FailedChangesAreNotRecorded", s.testAuditFailedChangesAreNotRecorded)
	t.Run("WithoutActorOrTime", s.testAuditWithoutActorOrTime)
	t.Run("Isolation", s.testAuditIsolation)
	t.Run("CancelledContext", s.testAuditCancelledContext)
}

// auditAt is the time of step m of testAuditEveryChange.
func auditAt(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute).In(zoneEast) }

func (s suite) testAuditEveryChange(t *testing.T) {
	st, as_ := s.auditStore(t)
	tok := fullToken("audited")
	if err := st.CreateToken(as(t.Context(), "alice", auditAt(0)), tok, NewHash(t, "audit 1")); err != nil {
		t.Fatal(err)
	}
	id := tok.ID
	bystander := create(t, st, simpleToken("bystander"), "audit bystander")
	changeEverything(t, st, tok)
	want := everyChangeEntries()
	got, total := listAudit(t, as_, apitoken.AuditQuery{TokenID: id})
	if total != len(want) {
		t.Errorf("total %d, want %d", total, len(want))
	}
	checkEntries(t, id, want, got)

	all, total := listAudit(t, as_, apitoken.AuditQuery{})
	if total != len(want)+1 || len(all) != total || all[len(all)-1].TokenID != id || all[len(all)-2].TokenID != bystander {
		t.Errorf("ListAudit of all tokens: total %d, entries %s", total, entriesText(all))
	}
	page, total := listAudit(t, as_, apitoken.AuditQuery{TokenID: id, Limit: 2, Offset: 1})
	if total != len(want) {
		t.Errorf("paged total %d, want %d", total, len(want))
	}
	checkEntries(t, id, want[1:3], page)
	past, total := listAudit(t, as_, apitoken.AuditQuery{TokenID: id, Limit: 5, Offset: 100})
	if len(past) != 0 || total != len(want) {
		t.Errorf("page past the end: %d entries, total %d; want 0, %d", len(past), total, len(want))
	}
	if none, total := listAudit(t, as_, apitoken.AuditQuery{TokenID: id + 1000}); len(none) != 0 || total != 0 {
		t.Errorf("unknown token: %d entries, total %d", len(none), total)
	}
}

// changeEverything makes every kind of audited change to tok (created by
// "alice" at auditAt(0)), step i at auditAt(i) by the actor it names: an
// update, a disable, an enable, an update that changes nothing, a rotation,
// an update of several fields and the deletion.
func changeEverything(t *testing.T, st apitoken.Store, tok *apitoken.Token) {
	t.Helper()
	ctx, id, at := t.Context(), tok.ID, auditAt
	steps := []struct {
		actor string
		do    func(ctx context.Context) error
	}{
		{"bob", func(ctx context.Context) error {
			_, err := st.UpdateToken(ctx, id, apitoken.Update{Name: apitoken.Set("renamed"), RateLimit: apitoken.Set(500),
				Description: apitoken.Set(tok.Description)}, at(1))
			return err
		}},
		{"bob", func(ctx context.Context) error {
			_, err := st.UpdateToken(ctx, id, apitoken.Update{Active: apitoken.Set(false)}, at(2))
			return err
		}},
		{"carol", func(ctx context.Context) error {
			_, err := st.UpdateToken(ctx, id, apitoken.Update{Active: apitoken.Set(true)}, at(3))
			return err
		}},
		{"carol", func(ctx context.Context) error {
			_, err := st.UpdateToken(ctx, id, apitoken.Update{Name: apitoken.Set("renamed")}, at(4))
			return err
		}},
		{"dave", func(ctx context.Context) error {
			_, err := st.RotateToken(ctx, id, NewHash(t, "audit 2"), "atk_rotat2", at(65), at(5))
			return err
		}},
		{"erin", func(ctx context.Context) error {
			_, err := st.UpdateToken(ctx, id, apitoken.Update{Active: apitoken.Set(false), AllowedEndpoints: apitoken.Set[[]string](nil),
				Metadata: apitoken.Set(map[string]string{"b": "2", "a": "1"}), ExpiresAt: apitoken.Set[*time.Time](nil)}, at(6))
			return err
		}},
		{"", func(ctx context.Context) error { return st.DeleteToken(ctx, id) }},
	}
	for i, step := range steps {
		if err := step.do(as(ctx, step.actor, at(i+1))); err != nil {
			t.Fatalf("step %d: %v", i+1, err)
		}
	}
}

// everyChangeEntries is the audit log of the token changeEverything changed,
// newest first.
func everyChangeEntries() []wantEntry {
	at := auditAt
	q := func(v string) string { return `"` + v + `"` }
	expiry := fullToken("").ExpiresAt.UTC().Format(time.RFC3339Nano)
	return []wantEntry{
		{"delete", "", "renamed", at(7), nil},
		{"update", "erin", "renamed", at(6), []string{
			"active: true -> false",
			`allowed_endpoints: ["/products*","/stores/**"] -> null`,
			`metadata: {"env":"prod","team":"a \"quoted\" value"} -> {"a":"1","b":"2"}`,
			"expires_at: " + q(expiry) + " -> null"}},
		{"rotate", "dave", "renamed", at(5), []string{
			`start: "atk_3xK9aQ" -> "atk_rotat2"`,
			"previous_expires_at: null -> " + q(at(65).UTC().Format(time.RFC3339Nano))}},
		{"update", "carol", "renamed", at(4), nil},
		{"enable", "carol", "renamed", at(3), []string{"active: false -> true"}},
		{"disable", "bob", "renamed", at(2), []string{"active: true -> false"}},
		{"update", "bob", "renamed", at(1), []string{`name: "audited" -> "renamed"`, "rate_limit: 200 -> 500"}},
		{"create", "alice", "audited", at(0), []string{
			`name: null -> "audited"`,
			`description: null -> "Token for the main WordPress website"`,
			`user_id: null -> "user-42"`,
			"active: null -> true",
			"rate_limit: null -> 200",
			`allowed_endpoints: null -> ["/products*","/stores/**"]`,
			`scopes: null -> ["read","write"]`,
			`metadata: null -> {"env":"prod","team":"a \"quoted\" value"}`,
			"expires_at: null -> " + q(expiry)}},
	}
}

func (s suite) testAuditFailedChangesAreNotRecorded(t *testing.T) {
	st, as_ := s.auditStore(t)
	id := create(t, st, simpleToken("one"), "audit failed")
	other := create(t, st, simpleToken("two"), "audit failed other")
	_, before := listAudit(t, as_, apitoken.AuditQuery{})
	ctx := t.Context()
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := st.CreateToken(ctx, simpleToken("dup"), NewHash(t, "audit failed")); !errors.Is(err, apitoken.ErrDuplicate) {
		t.Errorf("duplicate CreateToken: %v", err)
	}
	if _, err := st.UpdateToken(ctx, id+1000, apitoken.Update{Name: apitoken.Set("x")}, t0); !errors.Is(err, apitoken.ErrNotFound) {
		t.Errorf("UpdateToken of an unknown id: %v", err)
	}
	if _, err := st.RotateToken(ctx, id, NewHash(t, "audit failed other"), "atk_xxxxxx", t0, t0); !errors.Is(err, apitoken.ErrDuplicate) {
		t.Errorf("RotateToken to another token's hash: %v", err)
	}
	if err := st.DeleteToken(ctx, id+1000); !errors.Is(err, apitoken.ErrNotFound) {
		t.Errorf("DeleteToken of an unknown id: %v", err)
	}
	_, _ = st.UpdateToken(cancelled, id, apitoken.Update{Name: apitoken.Set("x")}, t0)
	_ = st.DeleteToken(cancelled, other)
	if _, after := listAudit(t, as_, apitoken.AuditQuery{}); after != before {
		t.Errorf("failed changes added %d audit entries", after-before)
	}
}

func (s suite) testAuditWithoutActorOrTime(t *testing.T) {
	st, as_ := s.auditStore(t)
	id := create(t, st, simpleToken("anonymous"), "audit anon")
	at := t0.Add(time.Hour)
	if _, err := st.UpdateToken(t.Context(), id, apitoken.Update{RateLimit: apitoken.Set(5)}, at); err != nil {
		t.Fatal(err)
	}
	got, _ := listAudit(t, as_, apitoken.AuditQuery{TokenID: id})
	checkEntries(t, id, []wantEntry{
		{"update", "", "anonymous", at, []string{"rate_limit: 100 -> 5"}},
		{"create", "", "anonymous", t0, []string{`name: null -> "anonymous"`, "active: null -> true", "rate_limit: null -> 100"}},
	}, got)
}

func (s suite) testAuditIsolation(t *testing.T) {
	st, as_ := s.auditStore(t)
	id := create(t, st, fullToken("isolated"), "audit isolation")
	got, _ := listAudit(t, as_, apitoken.AuditQuery{TokenID: id})
	got[0].Changes[0].To[0] = 'X'
	got[0].Actor = "mallory"
	again, _ := listAudit(t, as_, apitoken.AuditQuery{TokenID: id})
	if again[0].Actor != "" || again[0].Changes[0].To[0] == 'X' {
		t.Errorf("changing a returned entry changed the stored one: %+v", again[0])
	}
}

func (s suite) testAuditCancelledContext(t *testing.T) {
	_, as_ := s.auditStore(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, _, err := as_.ListAudit(ctx, apitoken.AuditQuery{}); !errors.Is(err, context.Canceled) {
		t.Errorf("ListAudit with a cancelled context: %v, want context.Canceled", err)
	}
}
