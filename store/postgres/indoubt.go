package postgres

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"fmt"
	"sync"
	"time"

	"github.com/apitoken/apitoken"
)

// A batch whose COMMIT fails may still have been committed: the server can
// commit and then lose the connection before its answer reaches us (a
// network cut, a proxy or the server process going away right after the
// commit, a synchronous-replication wait cancelled after the local commit).
// Returning that failure would make the usage pipeline write the batch a second
// time. So RecordUsage learns its transaction id (pg_current_xact_id, in
// the locking query) and, when COMMIT fails, asks the server what became of
// it. When the server cannot be asked at once, the batch is remembered as in
// doubt, by a digest of its events, and the question is asked again when
// the same batch comes back to be retried, before anything is written.

// maxInDoubt bounds how many unresolved batches a Store remembers.
const maxInDoubt = 1024

// Answers of pg_xact_status.
const (
	xactCommitted  = "committed"
	xactAborted    = "aborted"
	xactInProgress = "in progress"
)

// inDoubt holds the transaction ids of batches whose COMMIT outcome is not
// known yet, by batchDigest.
type inDoubt struct {
	mu  sync.Mutex
	ids map[[sha256.Size]byte]string
}

func (d *inDoubt) empty() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.ids) == 0
}

func (d *inDoubt) get(k [sha256.Size]byte) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ids[k]
}

func (d *inDoubt) put(k [sha256.Size]byte, xid string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ids == nil {
		d.ids = make(map[[sha256.Size]byte]string)
	}
	if len(d.ids) >= maxInDoubt {
		for old := range d.ids { // forget one: its retry may write twice
			delete(d.ids, old)
			break
		}
	}
	d.ids[k] = xid
}

func (d *inDoubt) forget(k [sha256.Size]byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.ids, k)
}

// batchDigest identifies a batch by the contents of its events, in order.
func batchDigest(events []apitoken.Event) [sha256.Size]byte {
	h := sha256.New()
	var buf []byte
	str := func(s string) {
		buf = binary.AppendUvarint(buf, uint64(len(s)))
		buf = append(buf, s...)
	}
	for i := range events {
		ev := &events[i]
		buf = buf[:0]
		buf = binary.AppendVarint(buf, ev.TokenID)
		str(ev.Endpoint)
		str(ev.Route)
		str(ev.Method)
		buf = binary.AppendVarint(buf, int64(ev.StatusCode))
		buf = binary.AppendVarint(buf, int64(ev.ResponseTime))
		buf = binary.AppendVarint(buf, ev.RequestSize)
		buf = binary.AppendVarint(buf, ev.ResponseSize)
		ip, _ := ev.IP.MarshalBinary()
		str(string(ip))
		str(ev.UserAgent)
		buf = binary.AppendVarint(buf, ev.Time.UnixNano())
		h.Write(buf)
	}
	var k [sha256.Size]byte
	h.Sum(k[:0])
	return k
}

// wasCommitted reports whether the transaction xid committed, asking on a
// connection of the pool. A transaction still in progress belongs to a
// session whose client has gone (its COMMIT is lost, or still on its way):
// that session is terminated, so that the transaction can never commit
// later, and the question asked again. A status the server no longer keeps
// (NULL: the transaction is very old) counts as not committed.
func (s *Store) wasCommitted(ctx context.Context, xid string) (bool, error) {
	for attempt := 0; ; attempt++ {
		var status sql.NullString
		if err := s.db.QueryRowContext(ctx, `SELECT pg_xact_status($1::xid8)`, xid).Scan(&status); err != nil {
			return false, err
		}
		switch status.String {
		case xactCommitted:
			return true, nil
		case xactInProgress:
		default: // aborted, or unknown
			return false, nil
		}
		if attempt == 3 {
			return false, fmt.Errorf("transaction %s is still in progress", xid)
		}
		// Wait up to 5 s for the session to end; its transaction then
		// aborts, unless the lost COMMIT was being processed right then.
		if _, err := s.db.ExecContext(ctx, `SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity
			WHERE backend_xid = $1::xid8::xid AND pid <> pg_backend_pid()`, xid); err != nil {
			return false, err
		}
		t := time.NewTimer(time.Duration(attempt+1) * 10 * time.Millisecond)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return false, ctx.Err()
		}
	}
}
