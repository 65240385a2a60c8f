package memory

import "strings"

// queue is a FIFO in a ring buffer whose size is a power of two: push at the
// back, pop at the front. Popped slots are zeroed so they do not keep memory
// alive; the ring doubles when full and halves when at most a quarter used,
// so a queue in a steady state never copies and every operation is
// amortised O(1).
type queue[T any] struct {
	buf  []T // len(buf) is 0 or a power of two
	head int // index of the front element in buf
	n    int // number of elements
}

// minShrinkCap is the size below which a ring never shrinks.
const minShrinkCap = 256

func (q *queue[T]) len() int { return q.n }

// at returns the i-th element from the front; 0 <= i < q.len().
func (q *queue[T]) at(i int) *T { return &q.buf[(q.head+i)&(len(q.buf)-1)] }

func (q *queue[T]) push(v T) {
	if q.n == len(q.buf) {
		q.resize(max(8, 2*q.n))
	}
	q.buf[(q.head+q.n)&(len(q.buf)-1)] = v
	q.n++
}

// pop removes and returns the front element; the queue must not be empty.
func (q *queue[T]) pop() T {
	var zero T
	v := q.buf[q.head]
	q.buf[q.head] = zero
	q.head = (q.head + 1) & (len(q.buf) - 1)
	q.n--
	q.shrink()
	return v
}

// filter keeps the elements for which keep is true, in order.
func (q *queue[T]) filter(keep func(*T) bool) {
	w := 0
	for i := range q.n {
		if p := q.at(i); keep(p) {
			*q.at(w) = *p
			w++
		}
	}
	var zero T
	for i := w; i < q.n; i++ {
		*q.at(i) = zero
	}
	q.n = w
	q.shrink()
}

// shrink halves the ring while at most a quarter of it is used.
func (q *queue[T]) shrink() {
	if q.n == 0 {
		q.head = 0
		if len(q.buf) > minShrinkCap {
			q.buf = nil
		}
		return
	}
	c := len(q.buf)
	for c > minShrinkCap && 4*q.n <= c {
		c /= 2
	}
	if c != len(q.buf) {
		q.resize(c)
	}
}

// resize moves the elements, in order, into a new ring of size c >= q.n.
func (q *queue[T]) resize(c int) {
	b := make([]T, c)
	if q.n > 0 {
		k := copy(b, q.buf[q.head:min(q.head+q.n, len(q.buf))])
		copy(b[k:q.n], q.buf)
	}
	q.buf, q.head = b, 0
}

// interner keeps one copy of each string that raw events hold, with a
// reference count, so repeated user agents and paths are stored once and no
// string of the caller's is retained.
type interner map[string]*interned

type interned struct {
	s    string
	refs int
}

// get returns the stored copy of s, adding a reference.
func (in interner) get(s string) string {
	if s == "" {
		return ""
	}
	if e := in[s]; e != nil {
		e.refs++
		return e.s
	}
	c := strings.Clone(s)
	in[c] = &interned{s: c, refs: 1}
	return c
}

// release drops a reference taken by get.
func (in interner) release(s string) {
	if s == "" {
		return
	}
	if e := in[s]; e != nil {
		if e.refs--; e.refs <= 0 {
			delete(in, s)
		}
	}
}
