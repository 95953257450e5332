package signaling

import (
	"context"
	"strconv"

	"github.com/strangerchat/stranger/internal/ids"
	"github.com/strangerchat/stranger/internal/match"
	"github.com/strangerchat/stranger/internal/protocol"
	"github.com/strangerchat/stranger/internal/websocket"
)

// phase is where a session is in its life on this node. It changes only
// under the session's mu, in these steps:
//
//	(new)     ─attach───► connected  a new session
//	arriving  ─arrive───► dropped    fetched from another node (resumeRemote)
//	connected ─drop─────► dropped    its connection ended; grace starts
//	dropped   ─reattach─► connected  resumed; grace stops
//	connected ─reattach─► connected  resumed on a new connection; the old one gets 4001
//	any other ─leave────► ended      end: grace over, client close, abuse, lost frames
//	connected, dropped ─leave─► moved  handed over to another node (AnswerHandover)
//
// ended and moved are final, and forget has taken the session out of the
// registry and closed its connection. The zero phase is arriving: a new
// session is connected before anyone else can see it.
type phase uint8

const (
	// phaseArriving: resumeRemote is fetching the session from another
	// node; events and relays for it wait in pending until its state is in.
	phaseArriving phase = iota
	// phaseConnected: conn is its live connection.
	phaseConnected
	// phaseDropped: it has no connection; it ends when grace fires unless
	// a resume comes first. lastConn is the connection it had, which
	// tells a resume how far the client got.
	phaseDropped
	// phaseEnded: gone for good, and removed from the engine.
	phaseEnded
	// phaseMoved: handed over to another node, which the engine now sends
	// its events to; a relay that still reaches it here goes there.
	phaseMoved
)

// gone: the session is no longer this node's (ended or moved).
func (p phase) gone() bool { return p == phaseEnded || p == phaseMoved }

// here: the session is this node's to act for (connected or dropped).
func (p phase) here() bool { return p == phaseConnected || p == phaseDropped }

// connectLocked makes c the session's connection. It returns the
// connection c took over, if any, for the caller to close.
func (s *session) connectLocked(c *conn) (old *conn) {
	old = s.conn
	if s.grace != nil {
		s.grace.Stop()
		s.grace = nil
	}
	s.phase, s.conn, s.lastConn = phaseConnected, c, nil
	c.s = s
	return old
}

// departure is what a session that left this node (ended or moved) still
// holds outside its lock: the connection forget closes, the token it
// unregisters.
type departure struct {
	conn  *conn
	token string
}

// leaveLocked moves the session to a final phase (phaseEnded or
// phaseMoved). Nothing is emitted after it, and the frames it held are
// released; forget does the rest outside the lock.
func (s *session) leaveLocked(to phase) departure {
	d := departure{conn: s.conn, token: s.token}
	if s.grace != nil {
		s.grace.Stop()
		s.grace = nil
	}
	s.phase, s.conn, s.lastConn, s.pending = to, nil, nil, nil
	s.held, s.heldBytes = nil, 0
	return d
}

// forget completes leaveLocked: the connection s still had is counted
// offline and closed with code, and s leaves the registry. It is the one
// path by which a session leaves this node.
func (h *Hub) forget(s *session, d departure, code int, msg string) {
	if c := d.conn; c != nil {
		h.addOnline(-1)
		go c.closeWith(code, msg)
	}
	h.unwatch(s)
	h.unregister(s, d.token)
}

// addOnline counts sessions gaining (+1) or losing (-1) their live
// connection.
func (h *Hub) addOnline(n int) {
	h.online.Add(int64(n))
	h.metrics.Connected.Add(float64(n))
}

// attach gives c a session: the one its claimed resume token names, if
// that can be resumed, else a new one, and queues the welcome. A resume
// that fails here (its session ended since the claim) needs room for a new
// session like any new connection; false: there is none, and c has no
// session.
func (h *Hub) attach(c *conn, cl claim, lastParam string, hasLast bool) bool {
	if cl.resumes() {
		if s := h.resume(c, cl, lastParam, hasLast); s != nil {
			return true
		}
		if _, _, reason := h.reserve(c.id); reason != "" {
			h.refused(refusedLateResume)
			return false
		}
	}
	s := &session{id: ids.SessionID("s_" + randomID()), hub: h}
	tok := randomID() + randomID()
	h.putToken(tok, s.id)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ip, s.token = c.ip, tok
	if h.opts.Identify != nil {
		s.who = h.opts.Identify(c.ip)
	}
	if h.opts.Pow != nil {
		s.pow = powOwed
	}
	s.connectLocked(c)
	h.register(s, tok, c.id)
	h.addOnline(1)
	public, turn := h.welcomeICE(s.id)
	c.welcome = protocol.EncodeWelcome(protocol.Welcome{
		Session: string(s.id), ResumeToken: tok, ICEServers: public, TURN: turn, Online: h.onlineCount(),
		Pow: h.powChallengeLocked(s),
	})
	c.kickLocked()
	return true
}

// resume attaches c to the session of its claimed token, re-sending what
// the client missed. It returns nil if that session cannot be resumed.
func (h *Hub) resume(c *conn, cl claim, lastParam string, hasLast bool) *session {
	if cl.local == nil {
		return h.resumeRemote(c, cl, lastParam, hasLast)
	}
	return h.resumeLocal(c, cl.local, cl.token, lastParam, hasLast)
}

// resumeLocal resumes s, a session held by this node whose token the
// connection claimed (claimToken).
func (h *Hub) resumeLocal(c *conn, s *session, token, lastParam string, hasLast bool) *session {
	// Wait for a frame of the old connection still being carried out, so
	// that welcome.state and lastSeq describe whole frames (see frameMu).
	s.frameMu.Lock()
	defer s.frameMu.Unlock()
	// The new token is shared before the welcome that carries it.
	tok := randomID() + randomID()
	h.dropToken(token)
	h.putToken(tok, s.id)
	old, n, res := h.reattach(s, c, tok, lastParam, hasLast)
	switch res {
	case reattachGone:
		h.dropToken(tok)
		h.countResume("unknown")
		return nil
	case reattachLost:
		// Frames the client says it lacks were already released: the drop
		// cannot be made lossless, so the session ends (protocol.md).
		h.dropToken(tok)
		h.countResume("lost")
		h.end(s, match.ReasonDisconnected, "resume after released frames")
		return nil
	}
	if old != nil {
		go func() {
			old.closeWith(closeTakenOver, "session resumed on another connection")
		}()
	} else {
		h.syncConnected(s)
	}
	h.countResume("resumed")
	h.log.Debug("resumed", "session", string(s.id), "last", n)
	return s
}

// reattachResult is the outcome of reattach.
type reattachResult uint8

const (
	reattached   reattachResult = iota
	reattachGone                // the session ended or moved meanwhile
	reattachLost                // the client lacks frames already released
)

// reattach makes c the connection of s, under the new token tok, and
// queues the resumed welcome. It returns the connection c took over (nil
// if s was dropped) and n, the highest seq the client has, after which c
// continues.
func (h *Hub) reattach(s *session, c *conn, tok, lastParam string, hasLast bool) (old *conn, n int64, res reattachResult) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.phase.gone() {
		return nil, 0, reattachGone
	}
	// N: by default what the old connection wrote; clamped to [0, outSeq].
	if v, err := strconv.ParseInt(lastParam, 10, 64); hasLast && err == nil {
		n = v
	} else if s.conn != nil {
		n = s.conn.written
	} else if s.lastConn != nil {
		n = s.lastConn.written
	}
	n = max(0, min(n, s.outSeq))
	if n < s.acked {
		return nil, n, reattachLost
	}
	// The old connection's writer stops by itself: its Next finds that
	// s.conn is no longer it. The caller sends the close frame.
	old = s.connectLocked(c)
	s.token = tok
	c.written = n
	s.ip = c.ip
	public, turn := h.welcomeICE(s.id)
	w := protocol.Welcome{
		Session: string(s.id), ResumeToken: tok, Resumed: true, ICEServers: public, TURN: turn,
		State: s.state.String(), LastSeq: new(s.inSeq), Pow: h.powChallengeLocked(s),
	}
	if s.state == match.Chatting {
		common := s.chat.common
		if common == nil {
			common = []string{}
		}
		w.Chat = &protocol.ChatInfo{Room: string(s.chat.room), Initiator: s.chat.initiator, Mode: s.chat.mode.String(), CommonInterests: common,
			ICEServers: h.iceServers(s.id)} // renewed TURN credentials for an ICE restart
	}
	h.registerToken(tok, s)
	if old == nil {
		h.addOnline(1)
	}
	w.Online = h.onlineCount()
	c.welcome = protocol.EncodeWelcome(w)
	c.kickLocked()
	return old, n, reattached
}

func (h *Hub) countResume(result string) {
	h.metrics.Resumes.WithLabelValues(result).Inc()
}

// connEnded runs when c's reader stops: a clean client close or rate abuse
// ends the session; any other end is a drop that starts the grace period.
func (h *Hub) connEnded(c *conn, e websocket.End) {
	err := e.Err
	s := c.s
	if s == nil {
		return // refused after the upgrade (attach): it never had a session
	}
	ended, cause, reason := h.drop(s, c, e)
	switch {
	case !ended:
		return // taken over by a resume, or already ended
	case cause != "":
		h.addOnline(-1)
		h.end(s, reason, cause)
		return
	}
	h.syncConnected(s)
	// Counted offline once the engine knows, so a client that sees the count
	// drop can rely on the session no longer being matched (rule 6).
	h.addOnline(-1)
	h.log.Debug("connection dropped; grace period", "session", string(s.id), "err", err)
}

// drop records that c ended as e says (the websocket package has closed
// the socket). If c was the session's connection (ended), the session is
// dropped and either must end now (cause and reason say why) or has started
// its grace period.
func (h *Hub) drop(s *session, c *conn, e websocket.End) (ended bool, cause string, reason match.Reason) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.phase != phaseConnected || s.conn != c {
		return false, "", ""
	}
	s.phase, s.conn, s.lastConn = phaseDropped, nil, c
	clientEnd, reason := endReason(e.Err)
	switch {
	case e.Sent == closePolicy:
		return true, "rate abuse", match.ReasonDisconnected
	case clientEnd && e.Sent == 0:
		return true, "client closed", reason
	case s.heldBytes > maxHeldDisconnected:
		return true, "held frames over limit", match.ReasonDisconnected
	}
	s.grace = h.clock.AfterFunc(h.opts.ResumeGrace, func() {
		// Only the grace period of this drop: a wall-clock timer can fire
		// just as a resume stops it, and must not end the session after
		// a later drop (whose own grace period started later). The check
		// and the end are one step under s.mu, so a resume either comes
		// first (the session lives on) or finds the session ended (and
		// gets a new one) — never a resumed welcome and then an end.
		h.endIf(s, func() bool { return s.phase == phaseDropped && s.lastConn == c },
			match.ReasonDisconnected, "grace period over")
	})
	return true, "", ""
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
		h.log.Warn("engine: set connected; retrying", "session", string(s.id), "err", err)
		h.syncConnectedLater(s)
	}
}

// trySyncConnected tells the engine whether s has a connection now.
func (h *Hub) trySyncConnected(ctx context.Context, s *session) error {
	s.engineMu.Lock()
	defer s.engineMu.Unlock()
	p := s.currentPhase()
	if p.gone() {
		return nil // End has removed it from the engine, or its new node tells it
	}
	return h.engine.SetConnected(ctx, s.id, p == phaseConnected)
}

// end ends a session for good: the engine tells its partner, the session is
// forgotten, and a connection it still has is closed.
func (h *Hub) end(s *session, reason match.Reason, cause string) {
	h.endIf(s, nil, reason, cause)
}

// endIf is end if cond, called with s.mu held, reports true (nil: always).
func (h *Hub) endIf(s *session, cond func() bool, reason match.Reason, cause string) {
	d, ok := s.leave(phaseEnded, cond)
	if !ok {
		return
	}
	h.forget(s, d, closeEnded, "session ended: "+cause)
	h.dropToken(d.token)
	h.endEngine(s.id, reason)
	h.metrics.Ended.WithLabelValues(cause).Inc()
	h.log.Debug("session ended", "session", string(s.id), "cause", cause)
}

// leave is leaveLocked if the session has not left already and cond
// (nil: always), called with s.mu held, reports true.
func (s *session) leave(to phase, cond func() bool) (departure, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.phase.gone() || (cond != nil && !cond()) {
		return departure{}, false
	}
	return s.leaveLocked(to), true
}

func (s *session) currentPhase() phase {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.phase
}

// endAsync ends s from a context that holds locks (an engine callback).
func (h *Hub) endAsync(s *session, reason match.Reason, cause string) {
	go h.end(s, reason, cause)
}

// iceServers is a chat's list: matched.iceServers and the chat of a resumed
// welcome, with TURN credentials minted for the session now.
func (h *Hub) iceServers(id ids.SessionID) []protocol.ICEServer {
	if h.opts.ICEServers == nil {
		return nil
	}
	return h.opts.ICEServers(id, h.clock.Now())
}

// welcomeICE is welcome.iceServers: only the entries without credentials
// (protocol 1.1), so a session that is never matched never holds a TURN
// credential however often it reconnects; turn (welcome.turn) says entries
// with credentials will come with matched.
func (h *Hub) welcomeICE(id ids.SessionID) (public []protocol.ICEServer, turn bool) {
	all := h.iceServers(id)
	public = make([]protocol.ICEServer, 0, len(all))
	for _, s := range all {
		if s.Username == "" && s.Credential == "" {
			public = append(public, s)
		}
	}
	return public, len(public) < len(all)
}

// Chatting reports whether session id is held by this node, has not ended
// and is in a chat: the embedded TURN relay's check on one node
// (turnserver.Sessions), so TURN credentials work only for a chat.
func (h *Hub) Chatting(_ context.Context, id ids.SessionID) (bool, error) {
	s := h.lookup(id)
	if s == nil {
		return false, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.phase.gone() && s.state == match.Chatting, nil
}

// onlineCount is welcome.online: the whole deployment's live connections.
func (h *Hub) onlineCount() int {
	if h.cluster != nil {
		return h.cluster.Online()
	}
	return h.Online()
}
