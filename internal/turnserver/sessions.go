package turnserver

import (
	"context"
	"sync"
	"time"

	"github.com/strangerchat/stranger/internal/clock"
	"github.com/strangerchat/stranger/internal/ids"
)

// Sessions tells the relay whether the signaling session a credential was
// minted for is in a chat now. Credentials are handed out only with a match
// (protocol 1.1), so a credential is honoured only while that holds: once
// the session ended, or its chat did, it is refused; the next match mints
// a new one. A node answers from its hub (one node) or from the session
// records in Redis; `stranger turn` with --redis from Redis.
type Sessions interface {
	Chatting(ctx context.Context, session ids.SessionID) (bool, error)
}

// Every authenticated TURN request (Allocate, Refresh, CreatePermission,
// ChannelBind) asks, and a browser sends a burst of them when ICE starts,
// so answers are kept briefly, per username. The username holds the
// credential's expiry, which differs for every match of a session (unless
// two are minted within one second), so a "no" about a chat that ended
// never stands in the way of the session's next chat.
const (
	answerFor    = 5 * time.Second
	checkTimeout = 250 * time.Millisecond // pion's UDP read loop waits for the answer
	answersMax   = 50_000                 // entries; past it the cache starts over
)

// sessionCache answers from Sessions with a short memory.
type sessionCache struct {
	sessions Sessions
	clock    clock.Clock

	mu      sync.Mutex
	answers map[string]cachedAnswer // by username
}

type cachedAnswer struct {
	chatting bool
	until    time.Time
}

// check reports whether the credential username of session may use the
// relay. An error from Sessions (Redis away) lets the request through:
// refusing would cut off every call in progress at its next refresh, which
// a Redis blip must not do. err is returned for counting and logging.
func (c *sessionCache) check(username string, session ids.SessionID) (ok bool, err error) {
	now := c.clock.Now()
	c.mu.Lock()
	a, hit := c.answers[username]
	c.mu.Unlock()
	if hit && now.Before(a.until) {
		return a.chatting, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), checkTimeout)
	defer cancel()
	chatting, err := c.sessions.Chatting(ctx, session)
	if err != nil {
		return true, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.answers) >= answersMax {
		clear(c.answers)
	}
	c.answers[username] = cachedAnswer{chatting: chatting, until: now.Add(answerFor)}
	return chatting, nil
}
