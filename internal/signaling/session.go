package signaling

import (
	"sync"
	"time"

	"github.com/strangerchat/stranger/internal/clock"
	"github.com/strangerchat/stranger/internal/identity"
	"github.com/strangerchat/stranger/internal/ids"
	"github.com/strangerchat/stranger/internal/match"
	"github.com/strangerchat/stranger/internal/protocol"
)

// maxHeldDisconnected is the most a disconnected session keeps for a resume
// (protocol.md, Resume); past it the session ends.
const maxHeldDisconnected = 256 << 10

// maxUnackedConnected is the most a connected session may have written but
// not yet acknowledged (by a pong) before it is treated as a slow client and
// its connection dropped, rather than letting its queue grow.
const maxUnackedConnected = 1 << 20

// earlyPingBytes: with this much unacknowledged, ping now instead of waiting
// for the next tick, so held frames are released sooner.
const earlyPingBytes = 32 << 10

// chatView is the session's own view of its chat, kept in step with the
// engine by the events it receives and by its own actions.
type chatView struct {
	room      match.RoomID
	partner   ids.SessionID
	initiator bool
	mode      protocol.Mode
	common    []string
}

type heldFrame struct {
	seq  int64
	data []byte
}

// session is one client's session on this node. Its fields are guarded by mu
// except where noted; mu is never held while calling the engine.
type session struct {
	id  ids.SessionID
	hub *Hub

	// frameMu is held for the whole of one client frame (engine calls
	// included) and while a resume or handover takes the session over. A
	// takeover leaves the old connection's reader running, so without it a
	// frame of the old connection could still be half-way (the engine has
	// ended the chat, the session's view not yet) while the resume takes
	// welcome.state, or while the new connection's frames run and are then
	// overwritten by the old one's view update. Lock order: frameMu,
	// engineMu, mu.
	frameMu sync.Mutex
	// engineMu serialises the session's SetConnected calls (syncConnected).
	// It is taken before mu, never while holding it.
	engineMu sync.Mutex

	mu sync.Mutex
	// phase is where the session is in its life on this node (lifecycle.go);
	// the four fields after it belong to one phase each, nil in the others.
	phase    phase
	conn     *conn       // phaseConnected: the live connection
	lastConn *conn       // phaseDropped: the connection it had (nil if it came from a dead node)
	grace    clock.Timer // phaseDropped: ends the session unless it is resumed
	pending  []func()    // phaseArriving: events and relays to apply once it is here

	ip        string
	who       identity.Hash // the person's identity, fixed when the session began ("" if unknown)
	token     string
	state     match.State
	chat      chatView
	prefs     match.Prefs
	lastChat  time.Time // when the last chat ended (for report)
	outSeq    int64     // seq of the last frame emitted
	acked     int64     // highest seq known delivered
	held      []heldFrame
	heldBytes int
	inSeq     int64      // highest client seq processed
	lines     transcript // the chat messages of the current or last chat
	budget    bucket
	pow       powState
	abuse     abuse
	requeue   bucket // join/next budget (quota.go)
	// quotaID is the identity s counts against (quota.go); guarded by
	// hub.mu, not mu.
	quotaID identity.Identity
	// watchCounts: the client asked for pushed counts (counts.go).
	watchCounts bool
}

// emitLocked assigns the next seq, keeps the frame until acknowledged and
// wakes the writer. build appends the frame for the given seq.
func (s *session) emitLocked(build func(dst []byte, seq int64) []byte, sizeHint int) {
	if s.phase.gone() {
		return
	}
	s.outSeq++
	b := build(make([]byte, 0, sizeHint), s.outSeq)
	s.held = append(s.held, heldFrame{seq: s.outSeq, data: b})
	s.heldBytes += len(b)
	if c := s.conn; c != nil {
		switch {
		case s.heldBytes > maxUnackedConnected:
			c.failLocked(errSlowClient)
		case s.heldBytes > earlyPingBytes && c.pingSeq == 0:
			c.pingDue = true
			c.kickLocked()
		default:
			c.kickLocked()
		}
		return
	}
	if s.heldBytes > maxHeldDisconnected {
		s.hub.endAsync(s, match.ReasonDisconnected, "held frames over limit")
	}
}

// ackLocked releases frames up to seq, which the client is known to have.
func (s *session) ackLocked(seq int64) {
	if seq <= s.acked {
		return
	}
	s.acked = seq
	n := 0
	for n < len(s.held) && s.held[n].seq <= seq {
		s.heldBytes -= len(s.held[n].data)
		n++
	}
	if n == len(s.held) {
		s.held = s.held[:0]
		if cap(s.held) > 64 {
			s.held = nil
		}
		return
	}
	s.held = append(s.held[:0], s.held[n:]...)
}

func (s *session) errorLocked(code protocol.Code, msg string) {
	if c := s.hub.metrics.errors[code]; c != nil {
		c.Inc()
	}
	s.emitLocked(func(dst []byte, seq int64) []byte {
		return protocol.AppendError(dst, seq, code, msg)
	}, 64+len(msg))
}

// onEvent applies an engine event to the local view and tells the client.
func (s *session) onEvent(ev match.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch s.phase {
	case phaseArriving:
		s.pending = append(s.pending, func() { s.applyEventLocked(ev) })
	case phaseMoved:
		// The engine sends this session's events to its new node.
	default:
		s.applyEventLocked(ev)
	}
}

func (s *session) applyEventLocked(ev match.Event) {
	switch ev.Kind {
	case match.EventWaiting:
		s.endChatLocked()
		s.state = match.Waiting
		s.emitLocked(protocol.AppendWaiting, 32)
	case match.EventMatched:
		s.state = match.Chatting
		s.lines = transcript{Room: ev.Room} // the last chat's lines go unless it was reported
		s.chat = chatView{room: ev.Room, partner: ev.Partner, initiator: ev.Initiator, mode: ev.Mode, common: ev.Common}
		ice := s.hub.iceServers(s.id) // TURN credentials only with a match (protocol 1.1)
		s.emitLocked(func(dst []byte, seq int64) []byte {
			return protocol.AppendMatchedICE(dst, seq, string(ev.Room), ev.Initiator, ev.Mode, ev.Common, ice)
		}, 512)
	case match.EventPeerLeft:
		if s.state != match.Chatting || (ev.Room != "" && ev.Room != s.chat.room) {
			return // a stale event of a chat this session already left
		}
		s.endChatLocked()
		s.state = match.Idle
		s.emitLocked(func(dst []byte, seq int64) []byte {
			return protocol.AppendPeerLeft(dst, seq, string(ev.Reason))
		}, 64)
	}
}

// endChatLocked forgets the current chat, remembering when it ended.
func (s *session) endChatLocked() {
	if s.state == match.Chatting {
		s.lastChat = s.hub.clock.Now()
	}
	s.chat = chatView{}
}
