package apitokenredis

import (
	"strconv"
	"testing"
	"time"

	"github.com/apitoken/apitoken"
)

func TestRefusals(t *testing.T) {
	var r refusals
	r.init()
	t0 := 1000 * time.Second    // a Clock.Monotonic reading
	reset := time.Unix(5000, 0) // on Redis's clock: unrelated to the local one
	r.store("k", apitoken.Decision{Limit: 5, Current: 6, Reset: reset, RetryAfter: 10 * time.Second}, t0)
	tests := []struct {
		name  string
		limit int
		at    time.Duration // after t0
		hit   bool
		retry time.Duration
	}{
		{name: "at once", limit: 5, at: 0, hit: true, retry: 10 * time.Second},
		{name: "later", limit: 5, at: 4 * time.Second, hit: true, retry: 6 * time.Second},
		{name: "another limit", limit: 6, at: time.Second, hit: false},
		{name: "at the deadline", limit: 5, at: 10 * time.Second, hit: false},
		{name: "forgotten after the deadline", limit: 5, at: time.Second, hit: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, hit := r.lookup("k", tt.limit, t0+tt.at)
			if hit != tt.hit {
				t.Fatalf("hit %v, want %v", hit, tt.hit)
			}
			if hit && (d.Allowed || d.Limit != 5 || d.Current != 6 || d.Remaining != 0 || !d.Reset.Equal(reset) || d.RetryAfter != tt.retry) {
				t.Errorf("%+v, want refused, current 6, reset %v, retry after %v", d, reset, tt.retry)
			}
		})
	}
}

// TestRefusalsBounded: a shard holds at most refusalShardMax entries;
// expired ones make room, an existing key is always updated.
func TestRefusalsBounded(t *testing.T) {
	var r refusals
	r.init()
	t0 := 1000 * time.Second // a Clock.Monotonic reading
	d := apitoken.Decision{Limit: 1, Current: 2, RetryAfter: time.Second}
	for i := range refusalShards * refusalShardMax * 2 {
		r.store(strconv.Itoa(i), d, t0)
	}
	total := 0
	for i := range r.shards {
		if n := len(r.shards[i].m); n > refusalShardMax {
			t.Fatalf("shard %d holds %d entries", i, n)
		} else {
			total += n
		}
	}
	if total < refusalShards*refusalShardMax/2 {
		t.Errorf("only %d entries kept", total)
	}
	// Once the entries have expired, new ones replace them.
	later := t0 + 2*time.Second
	for i := range refusalShards * refusalShardMax {
		r.store("new"+strconv.Itoa(i), d, later)
	}
	if _, hit := r.lookup("new0", 1, later); !hit {
		t.Error("a new refusal was not kept after the old ones expired")
	}
}
