// Package cluster is the node-to-node plumbing of a deployment that shares
// one Redis: each node's pub/sub channel (engine events, relayed messages,
// requests between nodes all travel on it, so they reach a node in the order
// Redis saw them), the node's heartbeat and the deployment-wide online count.
//
// It knows nothing of chats: package match (the Redis engine) registers a
// handler for its message kind, and what other nodes ask of this one
// (relayed messages, requests) reaches the node's Local. See the Redis part
// of docs/architecture.md.
package cluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/strangerchat/stranger/internal/ids"
)

// Message kinds: the first byte of every message on a node channel.
const (
	KindEvents   byte = 'e' // engine events and op markers (package match)
	KindRelay    byte = 'r' // a message for one session (Router)
	KindRequest  byte = 'q' // a request to this node (Request)
	KindResponse byte = 'a' // the answer to a request this node made
)

// Defaults of Config.
const (
	DefaultPrefix         = "st:"
	DefaultHeartbeatEvery = time.Second
	DefaultHeartbeatTTL   = 3 * time.Second
)

// Key names shared by the engine's scripts and the router. Every key of a
// deployment starts with the prefix.

// ChannelName is the pub/sub channel of node.
func ChannelName(prefix string, node ids.NodeID) string { return prefix + "n:" + string(node) }

// HeartbeatKey holds node's live-connection count while the node lives (TTL).
func HeartbeatKey(prefix string, node ids.NodeID) string { return prefix + "hb:" + string(node) }

// NodesKey is the set of nodes that have not been declared dead.
func NodesKey(prefix string) string { return prefix + "nodes" }

// SessionKey is the engine's hash of a session; its field SessionNodeField
// names the node that holds the session's connection.
func SessionKey(prefix string, session ids.SessionID) string { return prefix + "s:" + string(session) }

// SessionNodeField is the field of SessionKey naming the session's node.
const SessionNodeField = "nd"

// Config configures a Node.
type Config struct {
	Client *redis.Client
	Prefix string // default "st:"
	// ID names the node; default a random id. It must be unique in the
	// deployment: a restarted process takes a new one.
	ID  ids.NodeID
	Log *slog.Logger
	// HeartbeatEvery is how often the heartbeat key is refreshed and
	// HeartbeatTTL its lifetime: a node silent for HeartbeatTTL is dead.
	HeartbeatEvery time.Duration
	HeartbeatTTL   time.Duration
	// Local is this node's side of the calls that come in from the other
	// nodes. Nil: a node that only carries its engine's messages (relayed
	// messages and requests are dropped, nothing is told of a broken
	// subscription or a fence, and it counts 0 connections of its own).
	Local Local
}

// Local is what the node calls when the deployment reaches this node: the
// other nodes relay messages to its sessions and send it requests, and the
// node itself finds that messages for it may have been lost. It is defined
// here, where it is called; the composition of a node (the session layer
// and the engine) implements it.
type Local interface {
	// Deliver hands a message relayed to session (Router.Relay) to it. It
	// runs on the node's single receiving goroutine, in channel order, so
	// it must not block for long.
	Deliver(session ids.SessionID, payload []byte)
	// Answer answers a request of kind sent by another node (Request). It
	// runs in a goroutine of its own per request; ctx bounds it.
	Answer(ctx context.Context, kind byte, body []byte) []byte
	// Resubscribed: the channel subscription came back after a broken
	// connection; messages published in the gap are lost, so local state
	// derived from them must be checked. It runs on the receiving
	// goroutine: work that needs the engine (whose answers arrive there)
	// must run apart.
	Resubscribed()
	// Fenced: the node found it was declared dead (its heartbeat expired
	// and another node took its sessions away), or Redis lost its data;
	// the node's local sessions no longer match the shared state. It runs
	// in a goroutine of its own.
	Fenced()
	// Online is this node's live connections, published with the heartbeat.
	Online() int
}

// noLocal is the Local of a node without one (Config.Local nil).
type noLocal struct{}

func (noLocal) Deliver(ids.SessionID, []byte)               {}
func (noLocal) Answer(context.Context, byte, []byte) []byte { return nil }
func (noLocal) Resubscribed()                               {}
func (noLocal) Fenced()                                     {}
func (noLocal) Online() int                                 { return 0 }

// Node is this process's membership in the deployment.
type Node struct {
	cfg    Config
	rdb    *redis.Client
	log    *slog.Logger
	prefix string
	id     ids.NodeID
	ch     string

	handlers [256]func(body []byte)
	local    Local

	reqMu   sync.Mutex
	reqSeq  uint64
	pending map[string]chan []byte

	// others: the live connections of the other live nodes, as the last
	// successful heartbeat read them.
	others     atomic.Int64
	hbScript   *redis.Script
	relayScrpt *redis.Script

	psMu         sync.Mutex
	ps           *redis.PubSub
	started      bool
	beats        atomic.Int64
	healthy      atomic.Bool
	unsubscribed atomic.Bool // the channel subscription is broken
	// healthySince: when the current run of successful heartbeats began
	// (unix ns; 0 while failing).
	healthySince atomic.Int64
	lastBeat     atomic.Int64 // unix ns of the last successful heartbeat
	stop         chan struct{}
	done         sync.WaitGroup
	closeMu      sync.Once
}

// NewNode returns a node; register handlers, then Start it.
func NewNode(cfg Config) *Node {
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if cfg.ID == "" {
		cfg.ID = ids.NodeID(RandomID())
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.HeartbeatEvery <= 0 {
		cfg.HeartbeatEvery = DefaultHeartbeatEvery
	}
	if cfg.HeartbeatTTL <= 0 {
		cfg.HeartbeatTTL = DefaultHeartbeatTTL
	}
	if cfg.Local == nil {
		cfg.Local = noLocal{}
	}
	n := &Node{
		cfg: cfg, rdb: cfg.Client, log: cfg.Log.With("node", string(cfg.ID)), prefix: cfg.Prefix, id: cfg.ID,
		ch:      ChannelName(cfg.Prefix, cfg.ID),
		local:   cfg.Local,
		pending: map[string]chan []byte{},
		stop:    make(chan struct{}),
	}
	n.hbScript = redis.NewScript(heartbeatLua)
	n.relayScrpt = redis.NewScript(relayLua)
	n.handlers[KindResponse] = n.onResponse
	n.handlers[KindRequest] = n.onRequest
	n.handlers[KindRelay] = n.onRelay
	return n
}

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// RandomID is 80 random bits in lower-case base32.
func RandomID() string {
	var b [10]byte
	_, _ = rand.Read(b[:]) // never fails (Go 1.24+)
	return idEncoding.EncodeToString(b[:])
}

// ID is the node's id.
func (n *Node) ID() ids.NodeID { return n.id }

// Prefix is the key prefix of the deployment.
func (n *Node) Prefix() string { return n.prefix }

// Client is the Redis client.
func (n *Node) Client() *redis.Client { return n.rdb }

// HeartbeatTTL is how long a silent node counts as alive.
func (n *Node) HeartbeatTTL() time.Duration { return n.cfg.HeartbeatTTL }

// Handle registers the handler of a message kind of the engine's (the
// node's own kinds are reserved); call before Start. The handler runs on
// the node's single receiving goroutine, in channel order: it must not
// block for long.
func (n *Node) Handle(kind byte, h func(body []byte)) {
	if kind == KindRequest || kind == KindResponse || kind == KindRelay {
		panic("cluster: request, response and relay kinds are reserved")
	}
	n.handlers[kind] = h
}

// Start subscribes to the node's channel, writes the first heartbeat and
// starts the receiving and heartbeat loops.
func (n *Node) Start(ctx context.Context) error {
	n.ps = n.rdb.Subscribe(ctx, n.ch)
	if _, err := n.ps.Receive(ctx); err != nil { // the subscribe confirmation
		_ = n.ps.Close()
		return fmt.Errorf("cluster: subscribe %s: %w", n.ch, err)
	}
	if err := n.beat(ctx); err != nil {
		_ = n.ps.Close()
		return fmt.Errorf("cluster: first heartbeat: %w", err)
	}
	n.healthy.Store(true)
	n.healthySince.Store(time.Now().UnixNano())
	n.started = true
	n.done.Add(2)
	go n.receive()
	go n.heartbeats()
	return nil
}

// Close stops the loops and removes the heartbeat, so other nodes take over
// this node's sessions at once; it does not close the Redis client.
func (n *Node) Close() { n.shutdown(true) }

// Kill stops the loops without a word to Redis, like a process killed with
// SIGKILL: other nodes find out when the heartbeat expires. For tests.
func (n *Node) Kill() { n.shutdown(false) }

func (n *Node) shutdown(clean bool) {
	n.closeMu.Do(func() {
		close(n.stop)
		n.psMu.Lock()
		if n.ps != nil {
			_ = n.ps.Close()
		}
		n.psMu.Unlock()
		n.done.Wait()
		if clean && n.started {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_ = n.rdb.Del(ctx, HeartbeatKey(n.prefix, n.id)).Err()
		}
	})
}

// receive is the one goroutine that reads the node's channel.
func (n *Node) receive() {
	defer n.done.Done()
	ctx := context.Background()
	broken := false
	backoff := 50 * time.Millisecond
	wait := 2*n.cfg.HeartbeatEvery + time.Second
	ps := n.pubsub()
	lastSeen := time.Now()
	for {
		select {
		case <-n.stop:
			return
		default:
		}
		msg, err := ps.ReceiveTimeout(ctx, wait)
		if err != nil {
			select {
			case <-n.stop:
				return
			default:
			}
			var ne interface{ Timeout() bool }
			if errors.As(err, &ne) && ne.Timeout() {
				if time.Since(lastSeen) < 2*wait {
					// Quiet channel: ping so a dead connection is noticed.
					_ = ps.Ping(ctx)
					continue
				}
				// Not even our pings came back: the connection is dead
				// without having been closed (no RST). Start over.
				err = errors.New("no answer to pings")
				ps = n.resubscribe(ctx)
				lastSeen = time.Now()
			}
			if !broken {
				n.log.Warn("cluster: channel subscription broken; resubscribing", "err", err)
			}
			broken = true
			n.unsubscribed.Store(true)
			select {
			case <-n.stop:
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		lastSeen = time.Now()
		backoff = 50 * time.Millisecond
		switch m := msg.(type) {
		case *redis.Subscription:
			if broken && m.Kind == "subscribe" {
				broken = false
				n.unsubscribed.Store(false)
				n.log.Info("cluster: channel subscription back")
				n.local.Resubscribed()
			}
		case *redis.Message:
			n.dispatch([]byte(m.Payload))
		}
	}
}

func (n *Node) pubsub() *redis.PubSub {
	n.psMu.Lock()
	defer n.psMu.Unlock()
	return n.ps
}

// resubscribe replaces the subscription (its connection is dead).
func (n *Node) resubscribe(ctx context.Context) *redis.PubSub {
	n.psMu.Lock()
	defer n.psMu.Unlock()
	_ = n.ps.Close()
	n.ps = n.rdb.Subscribe(ctx, n.ch) // connects lazily if Redis is away
	return n.ps
}

func (n *Node) dispatch(b []byte) {
	if len(b) == 0 {
		return
	}
	if h := n.handlers[b[0]]; h != nil {
		h(b[1:])
		return
	}
	n.log.Warn("cluster: message of unknown kind", "kind", string(b[:1]))
}

func (n *Node) heartbeats() {
	defer n.done.Done()
	t := time.NewTicker(n.cfg.HeartbeatEvery)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), n.cfg.HeartbeatEvery)
		err := n.beat(ctx)
		cancel()
		if err != nil {
			n.healthySince.Store(0)
			if n.healthy.Swap(false) {
				n.log.Error("cluster: Redis unreachable; heartbeat failing", "err", err)
			}
			continue
		}
		if !n.healthy.Swap(true) {
			n.healthySince.Store(time.Now().UnixNano())
			n.log.Info("cluster: Redis reachable again")
		}
	}
}

// heartbeatLua refreshes the heartbeat with the online count and returns
// whether the node was still registered (0: declared dead or data lost) and
// the sum of the other live nodes' counts (a dead node's heartbeat key has
// expired). KEYS[1] the heartbeat, KEYS[2] the nodes; ARGV[1] the node,
// ARGV[2] its count, ARGV[3] the TTL (ms), ARGV[4] the heartbeat key prefix.
const heartbeatLua = `
local was = redis.call('SISMEMBER', KEYS[2], ARGV[1])
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
redis.call('SADD', KEYS[2], ARGV[1])
local others = 0
for _, node in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  if node ~= ARGV[1] then
    local v = redis.call('GET', ARGV[4] .. node)
    if v then others = others + tonumber(v) end
  end
end
return {was, others}`

func (n *Node) beat(ctx context.Context) error {
	res, err := n.hbScript.Run(ctx, n.rdb,
		[]string{HeartbeatKey(n.prefix, n.id), NodesKey(n.prefix)},
		string(n.id), n.local.Online(), n.cfg.HeartbeatTTL.Milliseconds(), HeartbeatKey(n.prefix, "")).Int64Slice()
	if err != nil {
		return err
	}
	if len(res) != 2 {
		return fmt.Errorf("cluster: heartbeat answered %v", res)
	}
	was, others := res[0], res[1]
	n.others.Store(others)
	n.lastBeat.Store(time.Now().UnixNano())
	if n.beats.Add(1) > 1 && was == 0 {
		n.log.Error("cluster: this node was declared dead (or Redis lost its data); its sessions must be resynchronised")
		go n.local.Fenced()
	}
	return nil
}

// Healthy reports whether the last heartbeat reached Redis.
func (n *Node) Healthy() bool { return n.healthy.Load() }

// HealthyFor is how long the node's heartbeats have been reaching Redis
// without a failure (0 while failing). A node should declare others dead
// only after HealthyFor exceeds the heartbeat TTL: after an outage of Redis
// every heartbeat has expired, and the other nodes need a beat to renew
// theirs before they can be told from dead ones.
func (n *Node) HealthyFor() time.Duration {
	since := n.healthySince.Load()
	if since == 0 || !n.healthy.Load() {
		return 0
	}
	// A pause of the process (GC, SIGSTOP) stops the beats without a
	// failure: judge others only while our own beats are recent.
	if time.Since(time.Unix(0, n.lastBeat.Load())) > 2*n.cfg.HeartbeatEvery {
		return 0
	}
	return time.Since(time.Unix(0, since))
}

// Ready pings Redis.
func (n *Node) Ready(ctx context.Context) error {
	if n.unsubscribed.Load() {
		return errors.New("cluster: channel subscription broken")
	}
	if err := n.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	return nil
}

// Publish sends a message of kind to node's channel.
func (n *Node) Publish(ctx context.Context, node ids.NodeID, kind byte, body []byte) error {
	msg := make([]byte, 0, 1+len(body))
	msg = append(append(msg, kind), body...)
	return n.rdb.Publish(ctx, ChannelName(n.prefix, node), msg).Err()
}

// Online is the number of live connections over the deployment: this
// node's own count, exact, plus the other live nodes' counts as the last
// successful heartbeat read them (so at most a heartbeat interval old). It
// never waits on Redis: a welcome carries it.
func (n *Node) Online() int { return n.local.Online() + int(n.others.Load()) }

// Request sends body to node as a request of kind and waits for the answer
// (nil answer allowed). A dead node never answers: the caller's ctx decides
// how long to wait.
func (n *Node) Request(ctx context.Context, node ids.NodeID, kind byte, body []byte) ([]byte, error) {
	n.reqMu.Lock()
	n.reqSeq++
	id := strconv.FormatUint(n.reqSeq, 10)
	ch := make(chan []byte, 1)
	n.pending[id] = ch
	n.reqMu.Unlock()
	defer func() {
		n.reqMu.Lock()
		delete(n.pending, id)
		n.reqMu.Unlock()
	}()
	msg := make([]byte, 0, len(n.id)+len(id)+len(body)+3)
	msg = append(msg, kind)
	msg = append(msg, n.id...)
	msg = append(msg, '\n')
	msg = append(msg, id...)
	msg = append(msg, '\n')
	msg = append(msg, body...)
	if err := n.Publish(ctx, node, KindRequest, msg); err != nil {
		return nil, fmt.Errorf("cluster: request to %s: %w", node, err)
	}
	select {
	case ans := <-ch:
		return ans, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("cluster: request to %s: %w", node, ctx.Err())
	}
}

// onRequest: kind, reply node, "\n", id, "\n", body.
func (n *Node) onRequest(b []byte) {
	if len(b) < 1 {
		return
	}
	kind := b[0]
	parts := strings.SplitN(string(b[1:]), "\n", 3)
	if len(parts) != 3 {
		return
	}
	from, id, body := ids.NodeID(parts[0]), parts[1], []byte(parts[2])
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ans := n.local.Answer(ctx, kind, body)
		out := make([]byte, 0, len(id)+1+len(ans))
		out = append(append(append(out, id...), '\n'), ans...)
		if err := n.Publish(ctx, from, KindResponse, out); err != nil {
			n.log.Warn("cluster: answer lost", "to", string(from), "err", err)
		}
	}()
}

// onRelay: session, "\n", payload (Router).
func (n *Node) onRelay(b []byte) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return
	}
	n.local.Deliver(ids.SessionID(b[:i]), b[i+1:])
}

func (n *Node) onResponse(b []byte) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return
	}
	n.reqMu.Lock()
	ch := n.pending[string(b[:i])]
	n.reqMu.Unlock()
	if ch != nil {
		select {
		case ch <- append([]byte(nil), b[i+1:]...):
		default:
		}
	}
}

// Subscribed reports whether the node's channel subscription is up: events
// and markers published to it now reach the node.
func (n *Node) Subscribed() bool { return !n.unsubscribed.Load() }
