package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/apitoken/apitoken"
)

// byHash returns the token found by the hash of key.
func byHash(t *testing.T, st apitoken.Store, key string) *apitoken.Token {
	t.Helper()
	tok, err := st.GetTokenByHash(t.Context(), NewHash(t, key))
	if err != nil {
		t.Fatalf("GetTokenByHash(%q): %v", key, err)
	}
	return tok
}

func notByHash(t *testing.T, st apitoken.Store, key string) {
	t.Helper()
	if tok, err := st.GetTokenByHash(t.Context(), NewHash(t, key)); !errors.Is(err, apitoken.ErrNotFound) {
		t.Errorf("GetTokenByHash(%q) = %v, %v; want ErrNotFound", key, tok, err)
	}
}

func rotate(t *testing.T, st apitoken.Store, id int64, key, start string, until, now time.Time) *apitoken.Token {
	t.Helper()
	tok, err := st.RotateToken(t.Context(), id, NewHash(t, key), start, until, now)
	if err != nil {
		t.Fatalf("RotateToken(%d, %q): %v", id, key, err)
	}
	return tok
}

// rotateNow is when the rotations of testRotate happen; rotateUntil is when
// their grace period ends.
var (
	rotateNow   = t0.Add(2 * time.Hour).In(zoneWest)
	rotateUntil = rotateNow.Add(24 * time.Hour)
)

func (s suite) testRotate(t *testing.T) {
	t.Run("NewAndPreviousSecret", s.testRotateNewAndPreviousSecret)
	t.Run("TokenExpiresBeforeGraceEnds", s.testRotateTokenExpiresBeforeGraceEnds)
	t.Run("NoGrace", s.testRotateNoGrace)
	t.Run("AgainForgetsTheFirstSecret", s.testRotateAgainForgetsTheFirstSecret)
	t.Run("UpdateKeepsBothSecrets", s.testRotateUpdateKeepsBothSecrets)
	t.Run("DuplicateHash", s.testRotateDuplicateHash)
	t.Run("NotFound", s.testRotateNotFound)
	t.Run("DeleteForgetsBothSecrets", s.testRotateDeleteForgetsBothSecrets)
	t.Run("CancelledContext", s.testRotateCancelledContext)
}

func (s suite) testRotateNewAndPreviousSecret(t *testing.T) {
	now, until := rotateNow, rotateUntil
	st := s.store(t)
	id := create(t, st, fullToken("rotated"), "rotate old")
	want := get(t, st, id)
	want.Start, want.PreviousExpiresAt, want.UpdatedAt = "atk_NEWsec", &until, now
	checkToken(t, "RotateToken result", want, rotate(t, st, id, "rotate new", "atk_NEWsec", until, now))
	checkToken(t, "GetToken after RotateToken", want, get(t, st, id))
	checkToken(t, "GetTokenByHash(new)", want, byHash(t, st, "rotate new"))
	// The old secret finds the token, expiring at the end of the grace
	// period (earlier than the token's own expiry).
	old := want.Clone()
	old.ExpiresAt = &until
	checkToken(t, "GetTokenByHash(old)", old, byHash(t, st, "rotate old"))
}

func (s suite) testRotateTokenExpiresBeforeGraceEnds(t *testing.T) {
	now, until := rotateNow, rotateUntil
	st := s.store(t)
	tok := fullToken("short")
	early := now.Add(time.Hour)
	tok.ExpiresAt = &early
	id := create(t, st, tok, "rotate short old")
	rotate(t, st, id, "rotate short new", "atk_short2", until, now)
	if got := byHash(t, st, "rotate short old"); got.ExpiresAt == nil || !got.ExpiresAt.Equal(early) {
		t.Errorf("old secret's ExpiresAt = %v, want the token's own %v", got.ExpiresAt, early)
	}
	if got := byHash(t, st, "rotate short new"); got.ExpiresAt == nil || !got.ExpiresAt.Equal(early) {
		t.Errorf("new secret's ExpiresAt = %v, want %v", got.ExpiresAt, early)
	}
}

func (s suite) testRotateNoGrace(t *testing.T) {
	now := rotateNow
	st := s.store(t)
	id := create(t, st, simpleToken("no grace"), "rotate nograce old")
	rotate(t, st, id, "rotate nograce new", "atk_nograc", now, now)
	if got := byHash(t, st, "rotate nograce old"); got.ExpiresAt == nil || !got.ExpiresAt.Equal(now) {
		t.Errorf("old secret's ExpiresAt = %v, want the rotation time %v", got.ExpiresAt, now)
	}
	if got := byHash(t, st, "rotate nograce new"); got.ExpiresAt != nil {
		t.Errorf("new secret's ExpiresAt = %v, want nil", got.ExpiresAt)
	}
}

func (s suite) testRotateAgainForgetsTheFirstSecret(t *testing.T) {
	now, until := rotateNow, rotateUntil
	st := s.store(t)
	id := create(t, st, simpleToken("twice"), "rotate twice 1")
	rotate(t, st, id, "rotate twice 2", "atk_second", until, now)
	later := now.Add(time.Minute)
	got := rotate(t, st, id, "rotate twice 3", "atk_thirdd", later.Add(time.Hour), later)
	if got.Start != "atk_thirdd" || got.PreviousExpiresAt == nil || !got.PreviousExpiresAt.Equal(later.Add(time.Hour)) {
		t.Errorf("second rotation: Start %q, PreviousExpiresAt %v", got.Start, got.PreviousExpiresAt)
	}
	notByHash(t, st, "rotate twice 1")
	if tok := byHash(t, st, "rotate twice 2"); tok.ID != id || tok.ExpiresAt == nil || !tok.ExpiresAt.Equal(later.Add(time.Hour)) {
		t.Errorf("previous secret: id %d, ExpiresAt %v", tok.ID, tok.ExpiresAt)
	}
	if tok := byHash(t, st, "rotate twice 3"); tok.ID != id || tok.ExpiresAt != nil {
		t.Errorf("current secret: id %d, ExpiresAt %v", tok.ID, tok.ExpiresAt)
	}
	// The first hash is free again.
	create(t, st, simpleToken("reuses the first hash"), "rotate twice 1")
}

func (s suite) testRotateUpdateKeepsBothSecrets(t *testing.T) {
	now, until := rotateNow, rotateUntil
	st := s.store(t)
	id := create(t, st, simpleToken("updated"), "rotate upd old")
	rotate(t, st, id, "rotate upd new", "atk_updnew", until, now)
	if _, err := st.UpdateToken(t.Context(), id, apitoken.Update{Name: apitoken.Set("renamed")}, now); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"rotate upd old", "rotate upd new"} {
		if tok := byHash(t, st, key); tok.Name != "renamed" {
			t.Errorf("GetTokenByHash(%q).Name = %q after the update", key, tok.Name)
		}
	}
	if tok := get(t, st, id); tok.PreviousExpiresAt == nil || !tok.PreviousExpiresAt.Equal(until) {
		t.Errorf("PreviousExpiresAt after an update = %v, want %v", tok.PreviousExpiresAt, until)
	}
}

func (s suite) testRotateDuplicateHash(t *testing.T) {
	now, until := rotateNow, rotateUntil
	st := s.store(t)
	other := create(t, st, simpleToken("other"), "rotate dup other")
	id := create(t, st, fullToken("victim"), "rotate dup mine")
	want := get(t, st, id)
	for _, key := range []string{"rotate dup other", "rotate dup mine"} {
		if tok, err := st.RotateToken(t.Context(), id, NewHash(t, key), "atk_dupdup", until, now); !errors.Is(err, apitoken.ErrDuplicate) {
			t.Errorf("RotateToken to the hash of %q = %v, %v; want ErrDuplicate", key, tok, err)
		}
	}
	checkToken(t, "token after a refused rotation", want, get(t, st, id))
	checkToken(t, "GetTokenByHash after a refused rotation", want, byHash(t, st, "rotate dup mine"))
	if tok := byHash(t, st, "rotate dup other"); tok.ID != other {
		t.Errorf("the other token's hash finds token %d", tok.ID)
	}
}

func (s suite) testRotateNotFound(t *testing.T) {
	now, until := rotateNow, rotateUntil
	st := s.store(t)
	gone := create(t, st, simpleToken("gone"), "rotate gone")
	if err := st.DeleteToken(t.Context(), gone); err != nil {
		t.Fatal(err)
	}
	for _, id := range []int64{gone, gone + 1000, 0} {
		if tok, err := st.RotateToken(t.Context(), id, NewHash(t, "rotate nf"), "atk_nfnfnf", until, now); !errors.Is(err, apitoken.ErrNotFound) {
			t.Errorf("RotateToken(%d) = %v, %v; want ErrNotFound", id, tok, err)
		}
	}
	notByHash(t, st, "rotate nf")
}

func (s suite) testRotateDeleteForgetsBothSecrets(t *testing.T) {
	now, until := rotateNow, rotateUntil
	st := s.store(t)
	id := create(t, st, simpleToken("deleted"), "rotate del old")
	rotate(t, st, id, "rotate del new", "atk_delnew", until, now)
	if err := st.DeleteToken(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	notByHash(t, st, "rotate del old")
	notByHash(t, st, "rotate del new")
	create(t, st, simpleToken("reuses old"), "rotate del old")
	create(t, st, simpleToken("reuses new"), "rotate del new")
}

func (s suite) testRotateCancelledContext(t *testing.T) {
	now, until := rotateNow, rotateUntil
	st := s.store(t)
	id := create(t, st, simpleToken("cancelled"), "rotate cancel")
	want := get(t, st, id)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := st.RotateToken(ctx, id, NewHash(t, "rotate cancel new"), "atk_cancel", until, now); !errors.Is(err, context.Canceled) {
		t.Errorf("RotateToken with a cancelled context: %v, want context.Canceled", err)
	}
	checkToken(t, "token after a cancelled rotation", want, get(t, st, id))
	notByHash(t, st, "rotate cancel new")
}
