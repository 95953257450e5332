package turnserver

import (
	"context"
	"sync"
	"time"

	"github.com/strangerchat/stranger/internal/clock"
	"github.com/strangerchat/stranger/internal/ids"
)

// Sessions tells the relay whether the signaling session a credential was
// minted for still exists. A node answers from its hub (one node) or from
// the session records in Redis; `stranger turn` with --redis from Redis.
type Sessions interface {
	Alive(ctx context.Context, session ids.SessionID) (bool, error)
}

// Cache lifetimes of Alive answers. Every authenticated TURN request
// (Allocate, Refresh, CreatePermission, ChannelBind) asks, and a browser
// sends a burst of them when ICE starts, so answers are kept briefly. A
// session that ended never comes back (ids are not reused), so "ended" is
// kept longer than "alive".
const (
	aliveFor      = 5 * time.Second
	endedFor      = time.Minute
	aliveTimeout  = 250 * time.Millisecond // pion's UDP read loop waits for the answer
	aliveCacheMax = 50_000                 // entries; past it the cache starts over
)

// aliveCache answers "is this session alive" from Sessions with a short
// memory.
type aliveCache struct {
	sessions Sessions
	clock    clock.Clock

	mu      sync.Mutex
	answers map[ids.SessionID]aliveAnswer
}

type aliveAnswer struct {
	alive bool
	until time.Time
}

// check reports whether session may use the relay. An error from Sessions
// (Redis away) lets the request through: refusing would cut off every call
// in progress at its next refresh, which a Redis blip must not do. err is
// returned for counting and logging.
func (c *aliveCache) check(session ids.SessionID) (ok bool, err error) {
	now := c.clock.Now()
	c.mu.Lock()
	a, hit := c.answers[session]
	c.mu.Unlock()
	if hit && now.Before(a.until) {
		return a.alive, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), aliveTimeout)
	defer cancel()
	alive, err := c.sessions.Alive(ctx, session)
	if err != nil {
		return true, err
	}
	a = aliveAnswer{alive: alive, until: now.Add(endedFor)}
	if alive {
		a.until = now.Add(aliveFor)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.answers) >= aliveCacheMax {
		clear(c.answers)
	}
	c.answers[session] = a
	return alive, nil
}
