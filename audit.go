package apitoken

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// Audit actions: AuditEntry.Action is one of these.
const (
	ActionCreate  = "create"
	ActionUpdate  = "update"
	ActionEnable  = "enable"
	ActionDisable = "disable"
	ActionRotate  = "rotate"
	ActionDelete  = "delete"
)

// ErrNoAuditStore is returned by Manager.Audit when the Store keeps no audit
// log (it does not implement AuditStore).
var ErrNoAuditStore = errors.New("apitoken: the store keeps no audit log")

// AuditEntry is one change to a token: who did what, when, and which fields
// changed from what to what. It never holds a secret: a rotation records the
// old and new Start (the public prefix shown in lists), never a hash.
type AuditEntry struct {
	ID      int64 `json:"id"`
	TokenID int64 `json:"token_id"`
	// TokenName is the token's name after the change (before it, for a
	// delete), so entries of deleted tokens still say which token it was.
	TokenName string `json:"token_name"`
	Action    string `json:"action"`
	// Actor is who made the change, as given with WithActor (the admin API
	// passes its Authorizer's answer); "" when nobody was named.
	Actor string `json:"actor"`
	// Changes lists the changed fields in a fixed order: for a create the
	// fields given a value, for an update those whose value changed (none
	// when the update changed nothing), for a rotation "start" and
	// "previous_expires_at", for a delete none.
	Changes   []Change  `json:"changes"`
	CreatedAt time.Time `json:"created_at"`
}

// Change is one field of an AuditEntry with its JSON values before and after
// the change ("null" for none, as before a create).
type Change struct {
	Field string          `json:"field"`
	From  json.RawMessage `json:"from"`
	To    json.RawMessage `json:"to"`
}

// AuditQuery selects audit entries for AuditStore.ListAudit, newest first.
type AuditQuery struct {
	// TokenID, when positive, keeps only that token's entries.
	TokenID int64
	// Limit is the page size; 0 means no limit.
	Limit int
	// Offset skips that many matching entries.
	Offset int
}

// AuditStore is implemented by stores that keep an audit log (the memory and
// PostgreSQL stores do). Such a store records an entry for every
// CreateToken, UpdateToken, RotateToken and DeleteToken that succeeds, in the
// same transaction as the change, with the actor and time that AuditInfo
// reads from the method's context; so no change goes unrecorded and no
// entry describes a change that failed.
type AuditStore interface {
	// ListAudit returns the entries matching q, newest (highest id) first,
	// and how many match before paging.
	ListAudit(ctx context.Context, q AuditQuery) (entries []*AuditEntry, total int, err error)
}

type auditKey struct{}

type auditInfo struct {
	actor string
	at    time.Time
}

// WithActor returns a context that names actor as the author of the changes
// made with it; audit entries record it. The admin API calls it with its
// Authorizer's answer; call it yourself around Manager methods (for a CLI, a
// migration job).
func WithActor(ctx context.Context, actor string) context.Context {
	info, _ := ctx.Value(auditKey{}).(auditInfo)
	info.actor = actor
	return context.WithValue(ctx, auditKey{}, info)
}

// WithAuditTime returns a context that gives at as the time of the changes
// made with it; audit entries record it. The Manager sets it to its clock
// reading for each change; store tests set it to check what is recorded.
func WithAuditTime(ctx context.Context, at time.Time) context.Context {
	info, _ := ctx.Value(auditKey{}).(auditInfo)
	info.at = at
	return context.WithValue(ctx, auditKey{}, info)
}

// AuditInfo returns the actor named with WithActor ("" if none) and the time
// of the change as the Manager's clock read it (the zero time when the store
// is called without a Manager: a store then uses its own clock). Store
// implementations call it to fill AuditEntry.
func AuditInfo(ctx context.Context) (actor string, at time.Time) {
	info, _ := ctx.Value(auditKey{}).(auditInfo)
	return info.actor, info.at
}

// AuditChanges returns the action and the changes of the audit entry a
// store records for the operation op (ActionCreate, ActionUpdate or
// ActionRotate) it has just made: before is the token as it was (nil for a
// create), after as it is now, u the update applied (ignored but for
// ActionUpdate).
//
// A create lists every field given a value, from null; an update the
// fields u sets whose value differs, with action ActionEnable or
// ActionDisable when u sets only active (the spec disables a token with PUT
// {"active": false}); a rotation "start" and "previous_expires_at". Any
// other op (ActionDelete) changes no field and is returned as it is.
// Changes is never nil.
func AuditChanges(op string, before, after *Token, u Update) (action string, changes []Change) {
	changes = []Change{}
	switch op {
	case ActionCreate:
		for _, f := range bodyFields {
			if to := f.value(after); string(to) != "null" && string(to) != `""` {
				changes = append(changes, Change{Field: f.name, From: json.RawMessage("null"), To: to})
			}
		}
	case ActionRotate:
		for _, f := range rotationFields {
			changes = f.appendChange(changes, before, after)
		}
	case ActionUpdate:
		for _, f := range bodyFields {
			if f.isSet(&u) {
				changes = f.appendChange(changes, before, after)
			}
		}
		return updateAction(u), changes
	}
	return op, changes
}

// updateAction is the audit action of the update u.
func updateAction(u Update) string {
	if f := u.fields(); len(f) == 1 && f[0] == "active" {
		if u.Active.Value {
			return ActionEnable
		}
		return ActionDisable
	}
	return ActionUpdate
}

// rotationFields are the fields of a rotation's Changes. (Creates and
// updates change bodyFields.)
var rotationFields = []auditField{
	{name: "start", show: func(t *Token) any { return t.Start }},
	{name: "previous_expires_at", show: func(t *Token) any { return utcTime(t.PreviousExpiresAt) }},
}

// appendChange appends the Change of f from before to after, if its value
// differs.
func (f auditField) appendChange(out []Change, before, after *Token) []Change {
	from, to := f.value(before), f.value(after)
	if string(from) == string(to) {
		return out
	}
	return append(out, Change{Field: f.name, From: from, To: to})
}

// value is the JSON value of f in t as the admin API shows it.
func (f auditField) value(t *Token) json.RawMessage {
	b, err := json.Marshal(f.show(t))
	if err != nil { // strings, bools, ints, string maps and times always encode
		return json.RawMessage("null")
	}
	return b
}

func utcTime(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UTC().Format(time.RFC3339Nano)
}
