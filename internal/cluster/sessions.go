package cluster

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/strangerchat/stranger/internal/ids"
)

// SessionRecords answers from Redis whether a session of the deployment is
// in a chat: the engine keeps a record (SessionKey) for every session that
// joined, on whichever node, with its state in field "st" (2: chatting),
// and deletes it when the session ends. A TURN relay asks it before
// honouring a credential (turnserver.Sessions).
type SessionRecords struct {
	Client *redis.Client
	Prefix string // "" means DefaultPrefix
}

// Chatting reports whether session's record exists and says chatting.
func (r SessionRecords) Chatting(ctx context.Context, session ids.SessionID) (bool, error) {
	prefix := r.Prefix
	if prefix == "" {
		prefix = DefaultPrefix
	}
	st, err := r.Client.HGet(ctx, SessionKey(prefix, session), sessionStateField).Result()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("session record of %s: %w", session, err)
	}
	return st == stateChatting, nil
}

// The engine's session state field and its value while chatting
// (internal/match/lua/lib.lua: st 0 idle, 1 waiting, 2 chatting).
const (
	sessionStateField = "st"
	stateChatting     = "2"
)
