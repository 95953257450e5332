package cluster

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/strangerchat/stranger/internal/ids"
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

// relayFromLua is relayLua that also records the sender's highest processed
// client seq (KEYS[2] the sender's hash, ARGV[3] the seq) with the relay.
const relayFromLua = `
local node = redis.call('HGET', KEYS[1], 'nd')
local old = redis.call('HGET', KEYS[2], 'iq')
if old or redis.call('EXISTS', KEYS[2]) == 1 then
  if not old or tonumber(old) < tonumber(ARGV[3]) then redis.call('HSET', KEYS[2], 'iq', ARGV[3]) end
end
if not node then return false end
redis.call('PUBLISH', ARGV[1] .. node, ARGV[2])
return node`

// Router delivers messages to sessions wherever their connection is. The
// node of a session is looked up in Redis on every send (no cache to
// invalidate when a session moves on resume); lookup and publish are one
// script, so a relay costs one round trip.
type Router struct {
	n         *Node
	relayFrom *redis.Script
}

// NewRouter returns the router of node n. The messages sent to sessions of
// n reach n's Local.Deliver, on n's receiving goroutine and in the order
// they were published.
func NewRouter(n *Node) *Router {
	return &Router{n: n, relayFrom: redis.NewScript(relayFromLua)}
}

// Relay sends payload to session on the node that holds it. Messages from
// one sender to one session arrive in the order of the Relay calls that
// returned. It returns the node it went to, or ErrNoRoute.
func (r *Router) Relay(ctx context.Context, session ids.SessionID, payload []byte) (ids.NodeID, error) {
	msg := make([]byte, 0, 2+len(session)+len(payload))
	msg = append(msg, KindRelay)
	msg = append(msg, session...)
	msg = append(msg, '\n')
	msg = append(msg, payload...)
	return r.run(ctx, r.n.relayScrpt, []string{SessionKey(r.n.prefix, session)}, r.n.prefix+"n:", msg)
}

// RelayFrom is Relay that also records, in the same round trip, that the
// client frame inSeq of session from was processed (the engine's record of
// from keeps it; match.Snapshot.InSeq returns it on a resume after from's
// node died, so the client re-sends exactly the frames that were lost).
func (r *Router) RelayFrom(ctx context.Context, from ids.SessionID, inSeq int64, session ids.SessionID, payload []byte) (ids.NodeID, error) {
	msg := make([]byte, 0, 2+len(session)+len(payload))
	msg = append(msg, KindRelay)
	msg = append(msg, session...)
	msg = append(msg, '\n')
	msg = append(msg, payload...)
	return r.run(ctx, r.relayFrom, []string{SessionKey(r.n.prefix, session), SessionKey(r.n.prefix, from)},
		r.n.prefix+"n:", msg, inSeq)
}

func (r *Router) run(ctx context.Context, sc *redis.Script, keys []string, args ...any) (ids.NodeID, error) {
	node, err := sc.Run(ctx, r.n.rdb, keys, args...).Text()
	if errors.Is(err, redis.Nil) {
		return "", ErrNoRoute
	}
	if err != nil {
		return "", fmt.Errorf("cluster: relay: %w", err)
	}
	return ids.NodeID(node), nil
}
