// Package redisnode puts a node on the Redis backend: one Redis client, the
// node's place in the deployment (cluster.Node, cluster.Router) and the
// Redis engine (match.Redis), wired together. The composition root gets the
// signaling.Engine, the signaling.Cluster and one Close.
package redisnode

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/strangerchat/stranger/internal/clock"
	"github.com/strangerchat/stranger/internal/cluster"
	"github.com/strangerchat/stranger/internal/ids"
	"github.com/strangerchat/stranger/internal/match"
	"github.com/strangerchat/stranger/internal/signaling"
)

// Options configure a Backend.
type Options struct {
	URL             string // redis://host:port/db
	Clock           clock.Clock
	Log             *slog.Logger
	InterestTimeout time.Duration
	MaxWaiting      int
	ResumeGrace     time.Duration
}

// Sessions is what the backend needs of the node's session layer
// (signaling.Hub): the engine's events for its sessions, its live
// connections, and its side of relays, handovers and resynchronisation.
type Sessions interface {
	match.Notifier
	Online() int
	DeliverRemote(session ids.SessionID, payload []byte)
	AnswerHandover(ctx context.Context, session ids.SessionID, token string, move func(context.Context) error) (signaling.Transfer, error)
	Resync(ctx context.Context, fenced bool, snapshot func(context.Context, ids.SessionID) (match.Snapshot, bool, error))
}

// Backend is a node's Redis backend.
type Backend struct {
	// Engine is the chat state and queue over Redis.
	Engine *match.Redis
	// Cluster moves relayed messages, resume tokens and sessions between
	// the nodes.
	Cluster signaling.Cluster

	rdb  *redis.Client
	node *cluster.Node
	log  *slog.Logger
	// sessions is set once by Start, before the node subscribes: nothing
	// reaches the node (events, relays, requests) before that, and the
	// node's goroutines start after it.
	sessions  Sessions
	closeOnce sync.Once
}

// New builds the backend of o; nothing connects until Start. The session
// layer is given to Start rather than here because it is built with
// b.Cluster, while the engine and the node call it.
func New(o Options) (*Backend, error) {
	// go-redis v9.23 logs every failed dial through a process-wide logger
	// and has no per-client one; the node and the engine log an outage once
	// instead. Set here, where a process opts into Redis, rather than in an
	// init() of every binary that links the package; setting it again for
	// another backend of the same process stores the same logger.
	redis.SetLogger(quietLogger{})
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	rdb, err := cluster.NewClient(o.URL)
	if err != nil {
		return nil, err
	}
	b := &Backend{rdb: rdb, log: o.Log}
	b.node = cluster.NewNode(cluster.Config{Client: rdb, Log: o.Log, Local: local{b}})
	eng, err := match.NewRedis(match.RedisConfig{
		Node: b.node, Clock: o.Clock, Log: o.Log,
		InterestTimeout: o.InterestTimeout,
		MaxWaiting:      o.MaxWaiting,
		ResumeGrace:     o.ResumeGrace,
	}, notifier{b})
	if err != nil {
		_ = rdb.Close()
		return nil, err
	}
	b.Engine = eng
	b.Cluster = &seam{node: b.node, router: cluster.NewRouter(b.node), eng: eng, log: o.Log}
	return b, nil
}

// Client is the backend's Redis connection pool, for other state the
// deployment shares through the same Redis (used proof-of-work solutions).
func (b *Backend) Client() *redis.Client { return b.rdb }

// Start joins the deployment with the node's sessions: it subscribes to the
// node's channel, writes the first heartbeat and starts the engine's
// sweeper. If it fails, Close still releases what was built.
func (b *Backend) Start(ctx context.Context, s Sessions) error {
	b.sessions = s
	if err := b.node.Start(ctx); err != nil {
		return fmt.Errorf("cannot reach Redis: %w", err)
	}
	b.Engine.Start()
	return nil
}

// Close stops the engine's timers and sweeper, leaves the deployment (the
// heartbeat is removed, so the other nodes take over at once) and closes
// the client. It works after New alone, after a failed Start, and twice.
func (b *Backend) Close() {
	b.closeOnce.Do(func() {
		b.Engine.Close()
		b.node.Close()
		if err := b.rdb.Close(); err != nil {
			b.log.Debug("closing the Redis client", "err", err)
		}
	})
}

// quietLogger is go-redis' logger: silent (see New).
type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

// notifier hands the engine's events to the sessions.
type notifier struct{ b *Backend }

func (n notifier) Notify(session ids.SessionID, ev match.Event) { n.b.sessions.Notify(session, ev) }

// local is the node's cluster.Local: what other nodes ask of this one goes
// to the sessions, with the engine where a call needs it.
type local struct{ b *Backend }

var _ cluster.Local = local{}

func (l local) Deliver(session ids.SessionID, payload []byte) {
	l.b.sessions.DeliverRemote(session, payload)
}

func (l local) Online() int { return l.b.sessions.Online() }

// Answer is the owner's side of a handover (seam.Fetch on the other node).
// A request it cannot serve gets an empty transfer (Found false), which the
// requester treats as a session that no longer exists.
func (l local) Answer(ctx context.Context, kind byte, body []byte) []byte {
	if kind != kindHandover {
		l.b.log.Warn("request of unknown kind from another node", "kind", string(kind))
		return nil
	}
	req, err := decodeHandover(body)
	if err != nil {
		l.b.log.Warn("handover", "err", err)
		return signaling.EncodeTransfer(signaling.Transfer{})
	}
	t, err := l.b.sessions.AnswerHandover(ctx, req.Session, req.Token, func(ctx context.Context) error {
		_, _, err := l.b.Engine.HandOver(ctx, req.Session, req.Requester)
		return err
	})
	if err != nil {
		l.b.log.Warn("handover", "session", string(req.Session), "err", err)
		return signaling.EncodeTransfer(signaling.Transfer{})
	}
	return signaling.EncodeTransfer(t)
}

// Resubscribed and Fenced repair every session's view after messages for
// this node may have been lost. Resubscribed runs on the node's receiving
// goroutine, which the engine needs for its answers, so the work runs apart.
func (l local) Resubscribed() { go l.resync(false) }
func (l local) Fenced()       { l.resync(true) }

func (l local) resync(fenced bool) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l.b.sessions.Resync(ctx, fenced, l.b.Engine.Snapshot)
}

// tokenTTL bounds how long a resume token is kept in Redis if its node dies
// without dropping it; a live session's token is replaced on every welcome.
const tokenTTL = 24 * time.Hour

// seam is signaling.Cluster over the node, its router and the engine.
type seam struct {
	node   *cluster.Node
	router *cluster.Router
	eng    *match.Redis
	log    *slog.Logger
}

var _ signaling.Cluster = (*seam)(nil)

func (c *seam) Relay(ctx context.Context, from ids.SessionID, inSeq int64, to ids.SessionID, payload []byte) error {
	_, err := c.router.RelayFrom(ctx, from, inSeq, to, payload)
	if errors.Is(err, cluster.ErrNoRoute) {
		return signaling.ErrNoRoute
	}
	if err != nil {
		return errors.Join(match.ErrOverloaded, err)
	}
	return nil
}

// Online is the deployment's live connections (cluster.Node.Online: this
// node's exact, the others' as of the last heartbeat).
func (c *seam) Online() int { return c.node.Online() }

func (c *seam) PutToken(ctx context.Context, token string, session ids.SessionID) error {
	return c.node.PutToken(ctx, token, session, tokenTTL)
}

func (c *seam) TakeToken(ctx context.Context, token string) (ids.SessionID, ids.NodeID, error) {
	s, n, err := c.node.TakeToken(ctx, token)
	if errors.Is(err, cluster.ErrUnknownToken) {
		return "", "", signaling.ErrUnknownToken
	}
	return s, n, err
}

func (c *seam) DropToken(ctx context.Context, token string) {
	if err := c.node.DropToken(ctx, token); err != nil {
		c.log.Debug("drop token", "err", err)
	}
}

// Fetch asks the live owner to hand the session over; if the owner is dead
// (or does not answer in time) the session is adopted from the engine's
// record, without the frames the owner held.
func (c *seam) Fetch(ctx context.Context, session ids.SessionID, owner ids.NodeID, token string) (signaling.Transfer, error) {
	if owner != c.node.ID() {
		if alive, err := c.node.Alive(ctx, owner); err == nil && alive {
			ans, err := c.handover(ctx, session, owner, token)
			if err == nil {
				return signaling.DecodeTransfer(ans)
			}
			c.log.Warn("handover: owner did not answer; adopting the session", "session", string(session), "owner", string(owner), "err", err)
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

// handover is the request to the live owner, answered by its local.Answer
// with an encoded signaling.Transfer.
func (c *seam) handover(ctx context.Context, session ids.SessionID, owner ids.NodeID, token string) ([]byte, error) {
	body, err := encodeHandover(handoverRequest{Session: session, Token: token, Requester: c.node.ID()})
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return c.node.Request(rctx, owner, kindHandover, body)
}
