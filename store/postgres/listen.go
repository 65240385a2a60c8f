package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"

	"github.com/lib/pq"

	"github.com/apitoken/apitoken"
)

// Invalidator drops tokens from a verification cache. *apitoken.Manager
// implements it.
type Invalidator interface {
	// Invalidate drops the token with the id.
	Invalidate(id int64)
	// InvalidateAll drops every token.
	InvalidateAll()
}

var _ Invalidator = (*apitoken.Manager)(nil)

// Listen keeps m's cache in step with changes made by other processes: it
// LISTENs on ChannelName(schema) on a connection of its own (dsn, as for
// lib/pq) and calls m.Invalidate(id) for every token that is updated or
// deleted anywhere, by any replica or by hand in SQL (the tables' trigger
// sends the NOTIFY when the change commits; TouchTokens' last_used_at writes
// are not notified). Each time it starts listening, first and after a lost
// connection is re-established, it calls m.InvalidateAll(), since changes may
// have been missed meanwhile, and then the WithOnListen function.
//
// While the connection is down the cache keeps serving (a change is then seen
// within the Manager's cache TTL, as without Listen), unless
// WithStrictInvalidation is given. Lost connections and failed attempts are
// logged (WithLogger) and retried with backoff (WithReconnectInterval).
//
// Listen blocks until ctx ends and then returns nil, having closed its
// connection. It returns an error at once for invalid options or connection
// string, and when the server rejects the LISTEN. Options: WithSchema,
// WithLogger, WithReconnectInterval, WithStrictInvalidation, WithOnListen.
func Listen(ctx context.Context, dsn string, m Invalidator, opts ...Option) error {
	c := newConfig(opts)
	if c.err != nil {
		return c.err
	}
	if m == nil {
		return errors.New("apitoken: postgres: Listen needs an Invalidator")
	}
	if _, err := pq.NewConnector(dsn); err != nil {
		// The parser's message may quote the string, password included.
		return errors.New("apitoken: postgres: listen: invalid connection string")
	}
	if ctx.Err() != nil {
		return nil
	}
	channel := ChannelName(c.schema)
	var stopped atomic.Bool
	events := listenerEvents(c.log.With("channel", channel), m, c.strict, &stopped)
	l := pq.NewListener(dsn, c.minReconnect, c.maxReconnect, events)
	defer func() {
		stopped.Store(true)
		_ = l.Close()
		// The listener's goroutine stops once it sees the close (within one
		// reconnect interval at most); it must be able to hand over what it
		// is sending meanwhile.
		go func() {
			for range l.Notify {
			}
		}()
	}()
	return listen(ctx, l, channel, m, c.onListen)
}

// listenerEvents returns the callback for pq.Listener's connection events:
// it logs a lost connection, a failed attempt and a reconnection, and on
// the first two, when strict, empties m's cache. Once stopped is set it does
// nothing.
func listenerEvents(log *slog.Logger, m Invalidator, strict bool, stopped *atomic.Bool) pq.EventCallbackType {
	return func(ev pq.ListenerEventType, err error) {
		if stopped.Load() {
			return
		}
		switch ev {
		case pq.ListenerEventDisconnected:
			log.Warn("apitoken: postgres: change listener lost its connection; reconnecting", "error", errText(err))
		case pq.ListenerEventConnectionAttemptFailed:
			log.Warn("apitoken: postgres: change listener cannot connect; retrying", "error", errText(err))
		case pq.ListenerEventReconnected:
			log.Info("apitoken: postgres: change listener reconnected; emptying the token cache")
			return // the nil notification that follows empties the cache
		default:
			return
		}
		if strict {
			m.InvalidateAll()
		}
	}
}

// listen LISTENs on channel with l and applies its notifications to m until
// ctx ends (nil) or l fails (its error). Each time listening starts, first
// and after every reconnection, it empties m's cache and then calls
// onListen, when not nil.
func listen(ctx context.Context, l *pq.Listener, channel string, m Invalidator, onListen func()) error {
	listening := func() {
		m.InvalidateAll()
		if onListen != nil {
			onListen()
		}
	}
	listenErr := make(chan error, 1)
	go func() { listenErr <- l.Listen(channel) }() // blocks until connected

	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-listenErr:
			listenErr = nil
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("apitoken: postgres: listen on %s: %w", channel, err)
			}
			listening()
		case n, ok := <-l.Notify:
			switch {
			case !ok:
				return errors.New("apitoken: postgres: listener closed unexpectedly")
			case n == nil:
				// Sent after a reconnection, once LISTEN is re-issued.
				listening()
			default:
				invalidate(m, n.Extra)
			}
		}
	}
}

// invalidate applies a notification's payload to m: a token id drops that
// token, anything else ("*" for a TRUNCATE, or a payload this version does
// not know) every token.
func invalidate(m Invalidator, payload string) {
	if id, err := strconv.ParseInt(payload, 10, 64); err == nil {
		m.Invalidate(id)
	} else {
		m.InvalidateAll()
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
