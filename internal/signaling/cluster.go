package signaling

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/strangerchat/stranger/internal/match"
	"github.com/strangerchat/stranger/internal/protocol"
)

// Cluster is the seam to the other nodes of a deployment (nil on a single
// node). It moves three things between nodes: relayed messages to sessions
// held elsewhere, resume tokens valid on every node, and sessions themselves
// when a client resumes on another node than the one that held it.
type Cluster interface {
	// Relay hands payload to session to, wherever it is connected, and
	// records that from's client frame inSeq was processed. ErrNoRoute if
	// the session is nowhere. Calls from one goroutine arrive in order.
	Relay(ctx context.Context, from string, inSeq int64, to string, payload []byte) error
	// Online counts live connections across the deployment.
	Online() int
	// PutToken makes token resume session on any node; TakeToken consumes
	// it (ErrUnknownToken if unknown, used or expired) and names the node
	// that issued it; DropToken forgets it.
	PutToken(ctx context.Context, token, session string) error
	TakeToken(ctx context.Context, token string) (session, owner string, err error)
	DropToken(ctx context.Context, token string)
	// Fetch moves session to this node: from its live owner (which hands
	// over its frames too), or from the engine's record if the owner died.
	// Found is false when the session no longer exists.
	Fetch(ctx context.Context, session, owner, token string) (Transfer, error)
}

// Errors a Cluster returns.
var (
	ErrNoRoute      = errors.New("signaling: no node holds the session")
	ErrUnknownToken = errors.New("signaling: unknown resume token")
)

// Transfer is a session moving between nodes.
type Transfer struct {
	Found bool `json:"found"`
	// Live: handed over by its node, with its frames and seq counters.
	// Otherwise rebuilt from the engine's record: the frames the dead node
	// held are lost and seq continues from the client's `last`.
	Live      bool          `json:"live"`
	State     match.State   `json:"state"`
	Room      string        `json:"room,omitempty"`
	Partner   string        `json:"partner,omitempty"`
	Initiator bool          `json:"initiator,omitempty"`
	Mode      protocol.Mode `json:"mode,omitempty"`
	Common    []string      `json:"common,omitempty"`
	Prefs     match.Prefs   `json:"prefs"`
	LastChat  time.Time     `json:"lastChat"`
	InSeq     int64         `json:"inSeq"`
	OutSeq    int64         `json:"outSeq"`
	Acked     int64         `json:"acked"`
	Written   int64         `json:"written"`
	Held      [][]byte      `json:"held,omitempty"` // frames acked+1 … outSeq
	IP        string        `json:"ip,omitempty"`
	Budget    float64       `json:"budget"`
}

// Relayed message kinds on the wire between nodes.
const (
	wireSignal byte = 's'
	wireChat   byte = 'c'
	wireTyping byte = 't'
)

// encodeRelay: kind, from, '\n', room, '\n', body.
func encodeRelay(kind byte, from, room string, body []byte) []byte {
	b := make([]byte, 0, 3+len(from)+len(room)+len(body))
	b = append(b, kind)
	b = append(b, from...)
	b = append(b, '\n')
	b = append(b, room...)
	b = append(b, '\n')
	return append(b, body...)
}

// DeliverRemote delivers a message relayed from another node to a session
// of this node. It runs on the node's receiving goroutine, in order.
func (h *Hub) DeliverRemote(to string, payload []byte) {
	if len(payload) < 3 {
		return
	}
	kind, rest := payload[0], payload[1:]
	i := bytes.IndexByte(rest, '\n')
	if i < 0 {
		return
	}
	from, rest := string(rest[:i]), rest[i+1:]
	j := bytes.IndexByte(rest, '\n')
	if j < 0 {
		return
	}
	room, body := string(rest[:j]), rest[j+1:]
	p := h.lookup(to)
	if p == nil {
		return
	}
	m := relayMsg{room: room}
	switch kind {
	case wireSignal:
		m.typ, m.data = protocol.TypeSignal, body
	case wireChat:
		m.typ, m.text = protocol.TypeChat, string(body)
	case wireTyping:
		m.typ, m.typing = protocol.TypeTyping, len(body) == 1 && body[0] == '1'
	default:
		return
	}
	p.deliver(from, m)
	h.metrics.relayed[m.typ].Inc()
}

// relayRemote sends a relay to a partner that is not on this node.
func (h *Hub) relayRemote(s *session, f *protocol.Frame, room, partner string) {
	var kind byte
	var body []byte
	switch f.Type {
	case protocol.TypeSignal:
		kind, body = wireSignal, f.Data
	case protocol.TypeChat:
		kind, body = wireChat, []byte(f.Text)
	case protocol.TypeTyping:
		kind, body = wireTyping, []byte{'0'}
		if f.Typing {
			body[0] = '1'
		}
	}
	err := h.call(func(ctx context.Context) error {
		return h.cluster.Relay(ctx, s.id, f.Seq, partner, encodeRelay(kind, s.id, room, body))
	})
	switch {
	case err == nil, errors.Is(err, ErrNoRoute):
		// Delivered, or the partner is gone (its end reaches s as peer_left).
	default:
		h.engineError(s, err)
	}
}

// AnswerHandover is the owner's side of a resume on another node: it checks
// the token, lets move (which makes the requester the session's node and
// returns once every earlier event for it was applied here) and hands over
// the session's frames and counters. The old connection is closed with 4001.
func (h *Hub) AnswerHandover(ctx context.Context, session, token string, move func(context.Context) error) (Transfer, error) {
	s := h.lookup(session)
	if s == nil {
		return Transfer{}, nil
	}
	// Hand over whole frames only: wait for one of the old connection that
	// is still being carried out (see frameMu).
	s.frameMu.Lock()
	defer s.frameMu.Unlock()
	s.mu.Lock()
	ok := !s.ended && s.token == token
	s.mu.Unlock()
	if !ok {
		return Transfer{}, nil
	}
	if err := move(ctx); err != nil {
		return Transfer{}, err
	}
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return Transfer{}, nil
	}
	s.ended, s.moved = true, true // events and relays now go to the new node
	if s.grace != nil {
		s.grace.Stop()
	}
	t := Transfer{Found: true, Live: true, State: s.state, Room: s.chat.room, Partner: s.chat.partner,
		Initiator: s.chat.initiator, Mode: s.chat.mode, Common: s.chat.common, Prefs: s.prefs,
		LastChat: s.lastChat, InSeq: s.inSeq, OutSeq: s.outSeq, Acked: s.acked, IP: s.ip, Budget: s.budget.tokens}
	for _, f := range s.held {
		t.Held = append(t.Held, f.data)
	}
	switch {
	case s.conn != nil:
		t.Written = s.conn.written
	case s.lastConn != nil:
		t.Written = s.lastConn.written
	}
	c := s.conn
	s.conn = nil
	tok := s.token
	s.mu.Unlock()
	if c != nil {
		h.online.Add(-1)
		h.metrics.Connected.Dec()
		go c.closeWith(closeTakenOver, "session resumed on another node")
	}
	h.mu.Lock()
	if h.sessions[session] == s {
		delete(h.sessions, session)
	}
	if h.tokens[tok] == s {
		delete(h.tokens, tok)
	}
	h.mu.Unlock()
	h.log.Debug("session handed over", "session", session)
	return t, nil
}

// resumeRemote resumes a session this node does not hold: it takes the
// token from the deployment's directory, registers the session (buffering
// what arrives for it) and fetches it from its node or the engine.
func (h *Hub) resumeRemote(c *conn, token, lastParam string, hasLast bool) *session {
	var id, owner string
	err := h.call(func(ctx context.Context) (err error) {
		id, owner, err = h.cluster.TakeToken(ctx, token)
		return err
	})
	if err != nil {
		if !errors.Is(err, ErrUnknownToken) {
			h.log.Warn("resume: token directory", "err", err)
		}
		h.countResume("unknown")
		return nil
	}
	s := &session{id: id, hub: h, adopting: true}
	h.mu.Lock()
	if h.sessions[id] != nil {
		h.mu.Unlock()
		h.countResume("unknown") // a racing resume of the same session won
		return nil
	}
	h.sessions[id] = s
	h.mu.Unlock()

	var t Transfer
	err = h.call(func(ctx context.Context) (err error) {
		t, err = h.cluster.Fetch(ctx, id, owner, token)
		return err
	})
	if err != nil || !t.Found {
		if err != nil {
			h.log.Warn("resume: fetch session", "session", id, "err", err)
		}
		h.mu.Lock()
		if h.sessions[id] == s {
			delete(h.sessions, id)
		}
		h.mu.Unlock()
		h.countResume("unknown")
		return nil
	}

	s.mu.Lock()
	s.ip, s.state, s.prefs, s.lastChat, s.inSeq = c.ip, t.State, t.Prefs, t.LastChat, t.InSeq
	s.budget.tokens = t.Budget
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
	s.pending, s.adopting = nil, false
	for _, f := range pending {
		f()
	}
	s.token = token // resumeLocal consumes and rotates it
	s.mu.Unlock()
	h.mu.Lock()
	h.tokens[token] = s
	h.mu.Unlock()
	// The session is local now, disconnected: resume it as any local one.
	return h.resumeLocal(c, token, lastParam, hasLast)
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

// Resync brings the view of every session of this node in line with the
// engine's record, after messages for this node may have been lost: its
// subscription broke during a Redis blip, or Redis lost its data or declared
// this node dead (fenced). A chat the engine no longer has ends with
// peer_left "disconnected", a missed match is announced, and a session that
// lost its queue place joins again with its last preferences. When fenced,
// each session first tells the engine again that it is here.
func (h *Hub) Resync(ctx context.Context, fenced bool, snapshot func(context.Context, string) (match.Snapshot, bool, error)) {
	n := 0
	for _, s := range h.snapshot() {
		if s.notHere() {
			continue
		}
		if fenced {
			h.syncConnected(s)
		}
		repaired, err := h.resyncOne(ctx, s, snapshot)
		if err != nil {
			h.log.Warn("resync: engine unreachable; will retry on the next resubscribe", "err", err)
			return
		}
		if repaired {
			n++
		}
	}
	h.log.Info("resynchronised sessions with the engine", "repaired", n, "fenced", fenced)
}

// notHere: s is not this node's to repair (ended, or on its way to or
// from another node).
func (s *session) notHere() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ended || s.adopting || s.moved
}

// resyncOne brings s's view in line with the engine's record (see Resync)
// and reports whether anything had to change.
func (h *Hub) resyncOne(ctx context.Context, s *session, snapshot func(context.Context, string) (match.Snapshot, bool, error)) (repaired bool, err error) {
	if s.notHere() {
		return false, nil
	}
	snap, ok, err := snapshot(ctx, s.id)
	if err != nil {
		return false, err
	}
	s.mu.Lock()
	evs, rejoin := match.Repair(match.View{State: s.state, Room: s.chat.room}, snap, ok)
	for _, ev := range evs {
		s.applyEventLocked(ev)
	}
	prefs := s.prefs
	s.mu.Unlock()
	if rejoin {
		if prefs.Mode == 0 {
			prefs.Mode = protocol.ModeVideo
		}
		if err := h.engine.Join(ctx, s.id, prefs); err != nil {
			h.log.Warn("resync: rejoin", "session", s.id, "err", err)
		}
	}
	return len(evs) > 0 || rejoin, nil
}
