package apitoken

import "context"

// Internals the black-box tests check against, exported to them only.
const (
	SecretLen           = secretLen
	DefaultMaxBodyBytes = defaultMaxBodyBytes
	MaxRotationGrace    = maxRotationGrace
)

// FlushLastUsed writes the pending last_used_at values now, as the Manager
// does every WithLastUsedInterval and on Close.
func (m *Manager) FlushLastUsed(ctx context.Context) error { return m.flushLastUsed(ctx) }

// SyncBuffer is a bytes.Buffer safe for concurrent use, for logs.
type SyncBuffer = syncBuffer
