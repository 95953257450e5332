package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// ErrNoRoute: the session has no node in Redis (gone, or never had a chat).
var ErrNoRoute = errors.New("cluster: no node for session")

// relayLua looks up the session's node and publishes the message on that
// node's channel in one round trip. KEYS[1] session hash; ARGV[1] channel
// prefix, ARGV[2] the message (kind byte, session, "\n", payload).
const relayLua = `
local node = redis.call('HGET', KEYS[1], 'nd')
if not node then return false end
redis.call('PUBLISH', ARGV[1] .. node, ARGV[2])
return node`

// Router delivers messages to sessions wherever their connection is. The
// node of a session is looked up in Redis on every send (no cache to
// invalidate when a session moves on resume); lookup and publish are one
// script, so a relay costs one round trip.
type Router struct {
	n *Node
}

// NewRouter returns the router of node n. h receives, on n's receiving
// goroutine and in the order they were published, the messages sent to
// sessions of n.
func NewRouter(n *Node, h func(session string, payload []byte)) *Router {
	n.Handle(KindRelay, func(b []byte) {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			return
		}
		h(string(b[:i]), b[i+1:])
	})
	return &Router{n: n}
}

// Relay sends payload to session on the node that holds it. Messages from
// one sender to one session arrive in the order of the Relay calls that
// returned. It returns the node it went to, or ErrNoRoute.
func (r *Router) Relay(ctx context.Context, session string, payload []byte) (string, error) {
	msg := make([]byte, 0, 2+len(session)+len(payload))
	msg = append(msg, KindRelay)
	msg = append(msg, session...)
	msg = append(msg, '\n')
	msg = append(msg, payload...)
	node, err := r.n.relayScrpt.Run(ctx, r.n.rdb, []string{SessionKey(r.n.prefix, session)},
		r.n.prefix+"n:", msg).Text()
	if errors.Is(err, redis.Nil) {
		return "", ErrNoRoute
	}
	if err != nil {
		return "", fmt.Errorf("cluster: relay: %w", err)
	}
	return node, nil
}
