// Package signaling is the WebSocket endpoint of protocol v1: it holds the
// client sessions of a node, checks every client frame, relays messages
// between the two sessions of a chat, keeps frames for a resume and runs the
// grace period of dropped connections. Chat state and matching live behind
// the Engine seam, so this code is the same for one node or many.
package signaling

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strangerchat/stranger/internal/clock"
	"github.com/strangerchat/stranger/internal/match"
	"github.com/strangerchat/stranger/internal/netpoll"
	"github.com/strangerchat/stranger/internal/protocol"
	"github.com/strangerchat/stranger/internal/websocket"
)

// Options configure a Hub. Zero durations take the defaults of protocol.md.
type Options struct {
	Engine     Engine
	Clock      clock.Clock
	Log        *slog.Logger
	Metrics    *Metrics
	Moderation *Moderation
	// ICEServers returns welcome.iceServers for a session (fresh TURN
	// credentials on every welcome). Nil: none.
	ICEServers func(session string, now time.Time) []protocol.ICEServer

	ResumeGrace    time.Duration // default 15 s
	PingInterval   time.Duration // default 10 s
	PongTimeout    time.Duration // default 30 s
	AllowedOrigins []string
	TrustProxy     bool
	MaxConnsPerIP  int // 0: unlimited
	MaxSessions    int // 0: unlimited
	MsgRate        float64
	MsgBurst       int
	// Cluster connects this node to the others of a deployment; nil on a
	// single node.
	Cluster Cluster
	// Poller drives reads, so idle connections hold no goroutine; nil: one
	// reading goroutine per connection.
	Poller *netpoll.Poller
}

// Hub holds the sessions of this node.
type Hub struct {
	opts       Options
	engine     Engine
	clock      clock.Clock
	log        *slog.Logger
	metrics    *Metrics
	moderation *Moderation
	cluster    Cluster
	upgrader   websocket.Upgrader

	mu       sync.RWMutex
	sessions map[string]*session
	tokens   map[string]*session
	perIP    map[string]int

	online         atomic.Int64
	retriesPending atomic.Int64 // engine calls retried in the background
	draining       atomic.Bool
	stop           chan struct{}
}

var _ match.Notifier = (*Hub)(nil)

// New builds a hub; call Run to start its pinger and Shutdown to drain it.
func New(o Options) *Hub {
	if o.ResumeGrace == 0 {
		o.ResumeGrace = 15 * time.Second
	}
	if o.PingInterval == 0 {
		o.PingInterval = 10 * time.Second
	}
	if o.PongTimeout == 0 {
		o.PongTimeout = 30 * time.Second
	}
	if o.MsgRate == 0 {
		o.MsgRate = 20
	}
	if o.MsgBurst == 0 {
		o.MsgBurst = 60
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics(prometheus.NewRegistry())
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	h := &Hub{
		opts:       o,
		engine:     o.Engine,
		clock:      o.Clock,
		log:        o.Log,
		metrics:    o.Metrics,
		moderation: o.Moderation,
		cluster:    o.Cluster,
		sessions:   map[string]*session{},
		tokens:     map[string]*session{},
		perIP:      map[string]int{},
		stop:       make(chan struct{}),
	}
	h.upgrader = websocket.Upgrader{Poller: o.Poller, MaxMessage: protocol.MaxFrameBytes, Log: o.Log}
	return h
}

// Online is the number of sessions with a live connection on this node.
func (h *Hub) Online() int { return int(h.online.Load()) }

// Run pings connections and drops dead ones until ctx ends or Shutdown.
func (h *Hub) Run(ctx context.Context) {
	t := time.NewTicker(h.opts.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-h.stop:
			return
		case <-t.C:
			h.pingAll()
		}
	}
}

func (h *Hub) pingAll() {
	now := h.clock.Now()
	for _, s := range h.snapshot() {
		s.mu.Lock()
		if c := s.conn; c != nil {
			if now.Sub(c.lastPong) > h.opts.PongTimeout {
				c.failLocked(errPongLost)
			} else {
				c.pingDue = true
				c.kickLocked()
			}
		}
		s.mu.Unlock()
	}
}

// snapshot lists the sessions. Lock order is session.mu before hub.mu, so
// code that needs both takes this copy instead of locking sessions under h.mu.
func (h *Hub) snapshot() []*session {
	h.mu.RLock()
	defer h.mu.RUnlock()
	list := make([]*session, 0, len(h.sessions))
	for _, s := range h.sessions {
		list = append(list, s)
	}
	return list
}

// lookup returns the local session id, or nil.
func (h *Hub) lookup(id string) *session {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.sessions[id]
}

// Notify delivers an engine event to a session of this node.
func (h *Hub) Notify(id string, ev match.Event) {
	s := h.lookup(id)
	if ev.Kind == match.EventMatched {
		h.metrics.MatchWait.Observe(ev.Waited.Seconds())
		if ev.Initiator {
			h.metrics.Matches.Inc()
		}
	}
	if s != nil {
		s.onEvent(ev)
	}
}

// ServeHTTP is the /ws endpoint.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.draining.Load() {
		http.Error(w, "node is shutting down; reconnect", http.StatusServiceUnavailable)
		return
	}
	if !originAllowed(r, h.opts.AllowedOrigins) {
		http.Error(w, "origin not allowed", http.StatusForbidden)
		return
	}
	ip := clientIP(r, h.opts.TrustProxy)
	h.mu.Lock()
	if h.opts.MaxConnsPerIP > 0 && h.perIP[ip] >= h.opts.MaxConnsPerIP {
		h.mu.Unlock()
		http.Error(w, "too many connections from your address", http.StatusTooManyRequests)
		return
	}
	if h.opts.MaxSessions > 0 && len(h.sessions) >= h.opts.MaxSessions && r.URL.Query().Get("resume") == "" {
		h.mu.Unlock()
		http.Error(w, "node is full; try again later", http.StatusServiceUnavailable)
		return
	}
	h.perIP[ip]++
	h.mu.Unlock()

	c := &conn{ip: ip, lastPong: h.clock.Now()}
	ws, err := h.upgrader.Upgrade(w, r, c, c) // the origin was checked above
	if err != nil {
		h.releaseIP(ip)
		return // Upgrade wrote the HTTP error
	}
	c.ws = ws
	h.metrics.Connections.Inc()
	q := r.URL.Query()
	h.attach(c, q.Get("resume"), q.Get("last"), q.Has("last"))
	c.ws.Start()
	// Drain closes the connections its snapshot finds. One upgraded before
	// Drain began but attached after the snapshot (a resume waiting for a
	// frame in flight, or just a slow goroutine) is closed here: draining
	// was set before the snapshot, so it is seen after the attach.
	if h.draining.Load() {
		c.closeWith(closeServiceRest, drainMessage)
	}
}

// drainMessage is the reason of the 1012 close a drain sends.
const drainMessage = "node restarting; resume on another node"

func (h *Hub) releaseIP(ip string) {
	h.mu.Lock()
	if h.perIP[ip] <= 1 {
		delete(h.perIP, ip)
	} else {
		h.perIP[ip]--
	}
	h.mu.Unlock()
}

// attach gives c a session: the one its resume token names, if that can be
// resumed, else a new one, and queues the welcome.
func (h *Hub) attach(c *conn, token, lastParam string, hasLast bool) {
	if token != "" {
		if s := h.resume(c, token, lastParam, hasLast); s != nil {
			return
		}
	}
	s := &session{id: "s_" + randomID(), hub: h}
	tok := randomID() + randomID()
	h.putToken(tok, s.id)
	s.mu.Lock()
	s.ip, s.token, s.conn, c.s = c.ip, tok, c, s
	h.mu.Lock()
	h.sessions[s.id] = s
	h.tokens[tok] = s
	h.mu.Unlock()
	h.online.Add(1)
	h.metrics.Connected.Inc()
	c.welcome = protocol.EncodeWelcome(protocol.Welcome{
		Session: s.id, ResumeToken: tok, ICEServers: h.iceServers(s.id), Online: h.onlineCount(),
	})
	c.kickLocked()
	s.mu.Unlock()
}

// putToken publishes a resume token to the deployment (no-op on one node).
// It is written before the welcome that carries it, so a client can resume
// on any node as soon as it knows its token.
func (h *Hub) putToken(tok, id string) {
	if h.cluster == nil {
		return
	}
	if err := h.call(func(ctx context.Context) error { return h.cluster.PutToken(ctx, tok, id) }); err != nil {
		h.log.Warn("resume token not shared; a resume on another node will fail", "session", id, "err", err)
	}
}

func (h *Hub) dropToken(tok string) {
	if h.cluster == nil || tok == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), engineTimeout)
	defer cancel()
	h.cluster.DropToken(ctx, tok)
}

func (h *Hub) iceServers(id string) []protocol.ICEServer {
	if h.opts.ICEServers == nil {
		return nil
	}
	return h.opts.ICEServers(id, h.clock.Now())
}

// onlineCount is welcome.online: the whole deployment's live connections.
func (h *Hub) onlineCount() int {
	if h.cluster != nil {
		return h.cluster.Online()
	}
	return h.Online()
}

// resume attaches c to the session of token, re-sending what the client
// missed. It returns nil if the token names no resumable session.
func (h *Hub) resume(c *conn, token, lastParam string, hasLast bool) *session {
	h.mu.RLock()
	_, local := h.tokens[token]
	h.mu.RUnlock()
	if !local && h.cluster != nil {
		return h.resumeRemote(c, token, lastParam, hasLast)
	}
	return h.resumeLocal(c, token, lastParam, hasLast)
}

// resumeLocal resumes a session held by this node.
func (h *Hub) resumeLocal(c *conn, token, lastParam string, hasLast bool) *session {
	h.mu.Lock()
	s := h.tokens[token]
	if s != nil {
		delete(h.tokens, token) // a token works once
	}
	h.mu.Unlock()
	if s == nil {
		h.countResume("unknown")
		return nil
	}
	// Wait for a frame of the old connection still being carried out, so
	// that welcome.state and lastSeq describe whole frames (see frameMu).
	s.frameMu.Lock()
	defer s.frameMu.Unlock()
	// The new token is shared before the welcome that carries it.
	tok := randomID() + randomID()
	h.dropToken(token)
	h.putToken(tok, s.id)
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		h.dropToken(tok)
		h.countResume("unknown")
		return nil
	}
	old := s.conn
	// N: the highest seq the client has; by default what the old connection
	// wrote; clamped to [0, outSeq].
	var n int64
	if v, err := strconv.ParseInt(lastParam, 10, 64); hasLast && err == nil {
		n = v
	} else if old != nil {
		n = old.written
	} else if s.lastConn != nil {
		n = s.lastConn.written
	}
	n = max(0, min(n, s.outSeq))
	if n < s.acked {
		// Frames the client says it lacks were already released: the drop
		// cannot be made lossless, so the session ends (protocol.md).
		s.mu.Unlock()
		h.dropToken(tok)
		h.countResume("lost")
		h.end(s, match.ReasonDisconnected, "resume after released frames")
		return nil
	}
	if s.grace != nil {
		s.grace.Stop()
		s.grace = nil
	}
	wasDisconnected := old == nil
	s.token = tok
	s.conn, c.s, c.written = c, s, n
	s.lastConn = nil
	s.ip = c.ip
	w := protocol.Welcome{
		Session: s.id, ResumeToken: tok, Resumed: true, ICEServers: h.iceServers(s.id),
		State: s.state.String(), LastSeq: new(s.inSeq),
	}
	if s.state == match.Chatting {
		common := s.chat.common
		if common == nil {
			common = []string{}
		}
		w.Chat = &protocol.ChatInfo{Room: s.chat.room, Initiator: s.chat.initiator, Mode: s.chat.mode.String(), CommonInterests: common}
	}
	h.mu.Lock()
	h.tokens[tok] = s
	h.mu.Unlock()
	if wasDisconnected {
		h.online.Add(1)
		h.metrics.Connected.Inc()
	}
	w.Online = h.onlineCount()
	c.welcome = protocol.EncodeWelcome(w)
	c.kickLocked()
	s.mu.Unlock()

	if old != nil {
		go func() {
			old.closeWith(closeTakenOver, "session resumed on another connection")
		}()
	}
	if wasDisconnected {
		h.syncConnected(s)
	}
	h.countResume("resumed")
	h.log.Debug("resumed", "session", s.id, "last", n)
	return s
}

func (h *Hub) countResume(result string) {
	h.metrics.Resumes.WithLabelValues(result).Inc()
}

// connEnded runs when c's reader stops: a clean client close or rate abuse
// ends the session; any other end is a drop that starts the grace period.
func (h *Hub) connEnded(c *conn, e websocket.End) {
	h.releaseIP(c.ip)
	err, serverClose := e.Err, e.Sent
	s := c.s
	s.mu.Lock()
	if s.conn != c || s.ended {
		s.mu.Unlock()
		return // taken over by a resume, or already ended
	}
	s.conn = nil
	s.lastConn = c
	offline := func() {
		h.online.Add(-1)
		h.metrics.Connected.Dec()
	}
	clientEnd, reason := endReason(err)
	switch {
	case serverClose == closePolicy:
		s.mu.Unlock()
		offline()
		h.end(s, match.ReasonDisconnected, "rate abuse")
		return
	case clientEnd && serverClose == 0:
		s.mu.Unlock()
		offline()
		h.end(s, reason, "client closed")
		return
	}
	if s.heldBytes > maxHeldDisconnected {
		s.mu.Unlock()
		offline()
		h.end(s, match.ReasonDisconnected, "held frames over limit")
		return
	}
	s.grace = h.clock.AfterFunc(h.opts.ResumeGrace, func() {
		// Only the grace period of this drop: a wall-clock timer can fire
		// just as a resume stops it, and must not end the session after
		// a later drop (whose own grace period started later). The check
		// and the end are one step under s.mu, so a resume either comes
		// first (the session lives on) or finds the session ended (and
		// gets a new one) — never a resumed welcome and then an end.
		h.endIf(s, func() bool { return s.conn == nil && s.lastConn == c },
			match.ReasonDisconnected, "grace period over")
	})
	s.mu.Unlock()
	h.syncConnected(s)
	// Counted offline once the engine knows, so a client that sees the count
	// drop can rely on the session no longer being matched (rule 6).
	offline()
	h.log.Debug("connection dropped; grace period", "session", s.id, "err", err)
}

// syncConnected tells the engine whether s has a connection now. A drop and
// a resume of one session run on different goroutines and call the engine
// after releasing s.mu, so their calls could arrive in the wrong order: a
// resume's "connected" overtaken by the drop's "disconnected" would leave a
// connected session that the engine never matches again. Calls for a session
// are therefore serialised, and each sends the state current when it runs:
// the last call always carries the latest state.
func (h *Hub) syncConnected(s *session) {
	err := h.call(func(ctx context.Context) error { return h.trySyncConnected(ctx, s) })
	if err != nil {
		h.log.Warn("engine: set connected; retrying", "session", s.id, "err", err)
		h.syncConnectedLater(s)
	}
}

// trySyncConnected tells the engine whether s has a connection now.
func (h *Hub) trySyncConnected(ctx context.Context, s *session) error {
	s.engineMu.Lock()
	defer s.engineMu.Unlock()
	s.mu.Lock()
	connected, ended := s.conn != nil, s.ended
	s.mu.Unlock()
	if ended {
		return nil // End has removed it from the engine
	}
	return h.engine.SetConnected(ctx, s.id, connected)
}

// end ends a session for good: the engine tells its partner, the session is
// forgotten, and a connection it still has is closed.
func (h *Hub) end(s *session, reason match.Reason, cause string) {
	h.endIf(s, nil, reason, cause)
}

// endIf is end if cond, called with s.mu held, reports true (nil: always).
func (h *Hub) endIf(s *session, cond func() bool, reason match.Reason, cause string) {
	s.mu.Lock()
	if s.ended || (cond != nil && !cond()) {
		s.mu.Unlock()
		return
	}
	s.ended = true
	if s.grace != nil {
		s.grace.Stop()
	}
	c := s.conn
	s.conn = nil
	tok := s.token
	s.held, s.heldBytes = nil, 0
	s.mu.Unlock()
	if c != nil {
		h.online.Add(-1)
		h.metrics.Connected.Dec()
		go c.closeWith(closeEnded, "session ended: "+cause)
	}
	h.mu.Lock()
	if h.sessions[s.id] == s {
		delete(h.sessions, s.id)
	}
	if h.tokens[tok] == s {
		delete(h.tokens, tok)
	}
	h.mu.Unlock()
	h.dropToken(tok)
	h.endEngine(s.id, reason)
	h.metrics.Ended.WithLabelValues(cause).Inc()
	h.log.Debug("session ended", "session", s.id, "cause", cause)
}

// endAsync ends s from a context that holds locks (an engine callback).
func (h *Hub) endAsync(s *session, reason match.Reason, cause string) {
	go h.end(s, reason, cause)
}

// Drain stops accepting connections and closes every open one with 1012
// (service restart): their sessions keep their grace period, so clients
// resume on another node.
func (h *Hub) Drain() {
	if !h.draining.CompareAndSwap(false, true) {
		return
	}
	close(h.stop)
	var conns []*conn
	for _, s := range h.snapshot() {
		s.mu.Lock()
		if s.conn != nil {
			conns = append(conns, s.conn)
		}
		s.mu.Unlock()
	}
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.closeWith(closeServiceRest, drainMessage)
		}()
	}
	wg.Wait()
}

// Draining reports whether Drain was called.
func (h *Hub) Draining() bool { return h.draining.Load() }

var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// randomID is 80 random bits, base32: unguessable session, room and token ids.
func randomID() string {
	var b [10]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(errors.New("crypto/rand failed: " + err.Error()))
	}
	return idEncoding.EncodeToString(b[:])
}

// UseEngine sets the engine. The engine is built with the hub as its
// Notifier, so it comes after New; call UseEngine before serving.
func (h *Hub) UseEngine(e Engine) { h.engine = e }
