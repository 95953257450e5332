package server

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/strangerchat/stranger/internal/cluster"
	"github.com/strangerchat/stranger/internal/match"
	"github.com/strangerchat/stranger/internal/signaling"
)

// kindHandover is the request a node sends to the node holding a session
// that a client resumes on the first one.
const kindHandover byte = 'h'

// tokenTTL bounds how long a resume token is kept in Redis if its node dies
// without dropping it; a live session's token is replaced on every welcome.
const tokenTTL = 24 * time.Hour

// redisCluster is signaling.Cluster over Redis: the node's channel
// (cluster.Node), the router and the Redis engine.
type redisCluster struct {
	node   *cluster.Node
	router *cluster.Router
	eng    *match.Redis
	log    *slog.Logger
	local  func() int // this node's live connections
	others atomic.Int64
	stop   chan struct{}
}

var _ signaling.Cluster = (*redisCluster)(nil)

func init() {
	// go-redis logs every failed dial through a global logger; the node and
	// the engine log an outage once instead.
	redis.SetLogger(quietRedisLogger{})
}

type quietRedisLogger struct{}

func (quietRedisLogger) Printf(context.Context, string, ...any) {}

func (c *redisCluster) Relay(ctx context.Context, from string, inSeq int64, to string, payload []byte) error {
	_, err := c.router.RelayFrom(ctx, from, inSeq, to, payload)
	if errors.Is(err, cluster.ErrNoRoute) {
		return signaling.ErrNoRoute
	}
	if err != nil {
		return errors.Join(match.ErrOverloaded, err)
	}
	return nil
}

// Online is the deployment's live connections: this node's own count, exact,
// plus the other live nodes' counts from their last heartbeats, refreshed in
// the background every second so a welcome never waits on Redis for it.
func (c *redisCluster) Online() int { return c.local() + int(c.others.Load()) }

func (c *redisCluster) refreshOnline() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		if v, err := c.othersOnline(ctx); err == nil {
			c.others.Store(int64(v))
		}
		cancel()
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
	}
}

// othersOnline sums the heartbeat counts of the live nodes but this one.
func (c *redisCluster) othersOnline(ctx context.Context) (int, error) {
	rdb, prefix := c.node.Client(), c.node.Prefix()
	nodes, err := rdb.SMembers(ctx, cluster.NodesKey(prefix)).Result()
	if err != nil {
		return 0, err
	}
	pipe := rdb.Pipeline()
	var gets []*redis.StringCmd
	for _, n := range nodes {
		if n != c.node.ID() {
			gets = append(gets, pipe.Get(ctx, cluster.HeartbeatKey(prefix, n)))
		}
	}
	if len(gets) == 0 {
		return 0, nil
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return 0, err
	}
	total := 0
	for _, g := range gets {
		if v, err := g.Int(); err == nil {
			total += v
		}
	}
	return total, nil
}

func (c *redisCluster) PutToken(ctx context.Context, token, session string) error {
	return c.node.PutToken(ctx, token, session, tokenTTL)
}

func (c *redisCluster) TakeToken(ctx context.Context, token string) (string, string, error) {
	s, n, err := c.node.TakeToken(ctx, token)
	if errors.Is(err, cluster.ErrUnknownToken) {
		return "", "", signaling.ErrUnknownToken
	}
	return s, n, err
}

func (c *redisCluster) DropToken(ctx context.Context, token string) {
	if err := c.node.DropToken(ctx, token); err != nil {
		c.log.Debug("drop token", "err", err)
	}
}

// Fetch asks the live owner to hand the session over; if the owner is dead
// (or does not answer in time) the session is adopted from the engine's
// record, without the frames the owner held.
func (c *redisCluster) Fetch(ctx context.Context, session, owner, token string) (signaling.Transfer, error) {
	if owner != c.node.ID() {
		if alive, err := c.node.Alive(ctx, owner); err == nil && alive {
			rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			ans, err := c.node.Request(rctx, owner, kindHandover, []byte(session+"\n"+token+"\n"+c.node.ID()))
			cancel()
			if err == nil {
				return signaling.DecodeTransfer(ans)
			}
			c.log.Warn("handover: owner did not answer; adopting the session", "session", session, "owner", owner, "err", err)
		}
	}
	snap, ok, err := c.eng.Adopt(ctx, session)
	if err != nil || !ok {
		return signaling.Transfer{}, err
	}
	t := signaling.Transfer{Found: true, State: snap.State, Prefs: snap.Prefs, LastChat: snap.LastEnded, InSeq: snap.InSeq}
	if snap.State == match.Chatting {
		t.Room, t.Partner, t.Initiator, t.Mode, t.Common = snap.Room, snap.Partner, snap.Initiator, snap.Prefs.Mode, snap.Common
	}
	return t, nil
}

// answerHandover is the owner's side of Fetch.
func answerHandover(hub *signaling.Hub, eng *match.Redis) func(ctx context.Context, body []byte) []byte {
	return func(ctx context.Context, body []byte) []byte {
		parts := strings.SplitN(string(body), "\n", 3)
		if len(parts) != 3 {
			return signaling.EncodeTransfer(signaling.Transfer{})
		}
		session, token, requester := parts[0], parts[1], parts[2]
		t, err := hub.AnswerHandover(ctx, session, token, func(ctx context.Context) error {
			_, _, err := eng.HandOver(ctx, session, requester)
			return err
		})
		if err != nil {
			return signaling.EncodeTransfer(signaling.Transfer{})
		}
		return signaling.EncodeTransfer(t)
	}
}
