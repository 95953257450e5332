package signaling

import (
	"context"
	"encoding/json"
	"strconv"

	"github.com/strangerchat/stranger/internal/ids"
	"github.com/strangerchat/stranger/internal/match"
)

// Handover between nodes: a client that resumes on another node than the
// one holding its session. The new node (resumeRemote) registers the
// session as arriving and fetches it through the Cluster; the old node
// (AnswerHandover) hands over its state and frames and forgets it.

// AnswerHandover is the owner's side of a resume on another node: it checks
// the token, lets move (which makes the requester the session's node and
// returns once every earlier event for it was applied here) and hands over
// the session's frames and counters. The old connection is closed with 4001.
func (h *Hub) AnswerHandover(ctx context.Context, session ids.SessionID, token string, move func(context.Context) error) (Transfer, error) {
	s := h.lookup(session)
	if s == nil {
		return Transfer{}, nil
	}
	// Hand over whole frames only: wait for one of the old connection that
	// is still being carried out (see frameMu).
	s.frameMu.Lock()
	defer s.frameMu.Unlock()
	if !s.handsOver(token) {
		return Transfer{}, nil
	}
	if err := move(ctx); err != nil {
		return Transfer{}, err
	}
	t, d, ok := s.handOver()
	if !ok {
		return Transfer{}, nil
	}
	h.forget(s, d, closeTakenOver, "session resumed on another node")
	h.log.Debug("session handed over", "session", string(session))
	return t, nil
}

// handsOver: s is this node's and token is its current resume token.
func (s *session) handsOver(token string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.phase.here() && s.token == token
}

// handOver takes the session's transfer and moves it to phaseMoved in one
// step, so nothing is emitted here after the snapshot: events and relays
// now go to the new node. False if it left this node meanwhile.
func (s *session) handOver() (Transfer, departure, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.phase.here() {
		return Transfer{}, departure{}, false
	}
	t := s.transferLocked()
	return t, s.leaveLocked(phaseMoved), true
}

// transferLocked is what the new node needs to carry on: the view, the
// seq counters, and the frames not yet acknowledged.
func (s *session) transferLocked() Transfer {
	// The budgets as of now (a bucket never used has no tokens yet).
	o, now := &s.hub.opts, s.hub.clock.Now()
	s.budget.refill(now, o.MsgRate, o.MsgBurst)
	t := Transfer{Found: true, Live: true, State: s.state, Room: s.chat.room, Partner: s.chat.partner,
		Initiator: s.chat.initiator, Mode: s.chat.mode, Common: s.chat.common, Prefs: s.prefs,
		LastChat: s.lastChat, InSeq: s.inSeq, OutSeq: s.outSeq, Acked: s.acked, IP: s.ip, Budget: s.budget.tokens,
		Who: s.who, Lines: s.lines, PowOwed: s.pow == powOwed}
	if o.NextRate > 0 {
		s.requeue.refill(now, o.NextRate, o.NextBurst)
		t.Requeue = new(s.requeue.tokens)
	}
	for _, f := range s.held {
		t.Held = append(t.Held, f.data)
	}
	switch {
	case s.conn != nil:
		t.Written = s.conn.written
	case s.lastConn != nil:
		t.Written = s.lastConn.written
	}
	return t
}

// resumeRemote resumes a session this node does not hold, whose token the
// connection claimed from the deployment's directory (claimToken): it
// registers the session (buffering what arrives for it) and fetches it
// from its node or the engine.
func (h *Hub) resumeRemote(c *conn, cl claim, lastParam string, hasLast bool) *session {
	id, owner, token := cl.remote, cl.owner, cl.token
	s := &session{id: id, hub: h, phase: phaseArriving}
	if !h.registerArriving(s, c.id) {
		h.countResume("unknown") // a racing resume of the same session won
		return nil
	}

	var t Transfer
	err := h.call(func(ctx context.Context) (err error) {
		t, err = h.cluster.Fetch(ctx, id, owner, token)
		return err
	})
	if err != nil || !t.Found {
		if err != nil {
			h.log.Warn("resume: fetch session", "session", string(id), "err", err)
		}
		h.unregister(s, "")
		h.countResume("unknown")
		return nil
	}
	if !s.arrive(c, t, token, lastParam) {
		h.countResume("unknown")
		return nil
	}
	// The session is local now, disconnected: resume it as any local one.
	return h.resumeLocal(c, s, token, lastParam, hasLast)
}

// arrive applies a fetched session and then what arrived for it meanwhile;
// the session is dropped afterwards (here, without a connection), ready for
// resumeLocal. False if it ended on the way.
func (s *session) arrive(c *conn, t Transfer, token, lastParam string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.phase != phaseArriving {
		return false
	}
	s.ip, s.state, s.prefs, s.lastChat, s.inSeq = c.ip, t.State, t.Prefs, t.LastChat, t.InSeq
	if t.Live {
		// The budgets carry on where they were (the zero time would
		// refill them on first use). A session rebuilt from the engine's
		// record starts with full ones.
		now := s.hub.clock.Now()
		s.budget = bucket{tokens: t.Budget, last: now}
		if t.Requeue != nil {
			s.requeue = bucket{tokens: *t.Requeue, last: now}
		}
	}
	// The person is who began the session: the handed-over identity, else
	// the one the engine kept with its last join (the old node died), else
	// the address it resumed from.
	s.who, s.lines = t.Who, t.Lines
	if s.who == "" {
		s.who = t.Prefs.Identity
	}
	if s.who == "" && s.hub.opts.Identify != nil {
		s.who = s.hub.opts.Identify(c.ip)
	}
	if t.PowOwed {
		s.pow = powOwed
	}
	if t.State == match.Chatting {
		s.chat = chatView{room: t.Room, partner: t.Partner, initiator: t.Initiator, mode: t.Mode, common: t.Common}
	}
	if t.Live {
		s.outSeq, s.acked = t.OutSeq, t.Acked
		for i, b := range t.Held {
			s.held = append(s.held, heldFrame{seq: t.Acked + int64(i) + 1, data: b})
			s.heldBytes += len(b)
		}
		s.lastConn = &conn{written: t.Written}
	} else {
		// The node that held the frames died with them: continue after what
		// the client has.
		n, _ := strconv.ParseInt(lastParam, 10, 64)
		n = max(0, n)
		s.outSeq, s.acked = n, n
	}
	// What arrived while the session was on its way, in arrival order, on
	// top of the state it had when it left its node.
	pending := s.pending
	s.phase, s.pending = phaseDropped, nil
	for _, f := range pending {
		f()
	}
	s.token = token // resumeLocal consumes and rotates it
	return true
}

// transferJSON encodes a Transfer for the wire between nodes.
func transferJSON(t Transfer) []byte {
	b, _ := json.Marshal(t) // plain data: cannot fail
	return b
}

// EncodeTransfer and DecodeTransfer carry a Transfer between nodes.
func EncodeTransfer(t Transfer) []byte { return transferJSON(t) }

// DecodeTransfer is the inverse of EncodeTransfer.
func DecodeTransfer(b []byte) (Transfer, error) {
	var t Transfer
	err := json.Unmarshal(b, &t)
	return t, err
}
