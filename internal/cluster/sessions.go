package cluster

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/strangerchat/stranger/internal/ids"
)

// SessionRecords answers from Redis whether a session of the deployment
// still exists: the engine keeps a record (SessionKey) for every session
// that joined, on whichever node, and deletes it when the session ends. A
// TURN relay asks it before honouring a credential (turnserver.Sessions).
type SessionRecords struct {
	Client *redis.Client
	Prefix string // "" means DefaultPrefix
}

// Alive reports whether session's record exists.
func (r SessionRecords) Alive(ctx context.Context, session ids.SessionID) (bool, error) {
	prefix := r.Prefix
	if prefix == "" {
		prefix = DefaultPrefix
	}
	n, err := r.Client.Exists(ctx, SessionKey(prefix, session)).Result()
	if err != nil {
		return false, fmt.Errorf("session record of %s: %w", session, err)
	}
	return n == 1, nil
}
