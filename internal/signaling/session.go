package signaling

import (
	"bytes"
	"sync"
	"time"

	"github.com/strangerchat/stranger/internal/clock"
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
	room      string
	partner   string
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
	id  string
	hub *Hub

	// adopting: the session is being fetched from another node; what
	// arrives for it meanwhile waits in pending. moved: it was handed over
	// to another node; what still arrives here goes there.
	adopting bool
	pending  []func()
	moved    bool
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

	mu        sync.Mutex
	ip        string
	token     string
	state     match.State
	chat      chatView
	prefs     match.Prefs
	lastChat  time.Time // when the last chat ended (for report)
	outSeq    int64     // seq of the last frame emitted
	acked     int64     // highest seq known delivered
	held      []heldFrame
	heldBytes int
	inSeq     int64 // highest client seq processed
	conn      *conn
	lastConn  *conn // the connection the session had before it dropped
	grace     clock.Timer
	ended     bool
	budget    bucket
	abuse     abuse
}

// emitLocked assigns the next seq, keeps the frame until acknowledged and
// wakes the writer. build appends the frame for the given seq.
func (s *session) emitLocked(build func(dst []byte, seq int64) []byte, sizeHint int) {
	if s.ended {
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
	if s.adopting {
		s.pending = append(s.pending, func() { s.applyEventLocked(ev) })
		return
	}
	if s.moved {
		return // the engine sends this session's events to its new node
	}
	s.applyEventLocked(ev)
}

func (s *session) applyEventLocked(ev match.Event) {
	switch ev.Kind {
	case match.EventWaiting:
		s.endChatLocked()
		s.state = match.Waiting
		s.emitLocked(protocol.AppendWaiting, 32)
	case match.EventMatched:
		s.state = match.Chatting
		s.chat = chatView{room: ev.Room, partner: ev.Partner, initiator: ev.Initiator, mode: ev.Mode, common: ev.Common}
		s.emitLocked(func(dst []byte, seq int64) []byte {
			return protocol.AppendMatched(dst, seq, ev.Room, ev.Initiator, ev.Mode, ev.Common)
		}, 128)
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

// relayMsg is a partner's signal, chat or typing message on its way to this
// session. Data may alias the sender's read buffer, which is reused as soon
// as the frame has been handled: anything kept past the call must copy it.
type relayMsg struct {
	typ    protocol.Type
	room   string
	data   []byte // signal
	text   string // chat
	typing bool   // typing
}

func (m *relayMsg) appendFrame(dst []byte, seq int64) []byte {
	switch m.typ {
	case protocol.TypeSignal:
		return protocol.AppendSignal(dst, seq, m.room, m.data)
	case protocol.TypeChat:
		return protocol.AppendChat(dst, seq, m.text)
	default:
		return protocol.AppendTyping(dst, seq, m.typing)
	}
}

func (m *relayMsg) size() int {
	return len(m.data) + len(m.text) + len(m.room) + 64
}

// deliver hands a partner's message to this session if it is still in that
// chat with that partner; a message of an old chat is dropped, so a late
// candidate never reaches a new partner.
func (s *session) deliver(from string, m relayMsg) (ok, moved bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.adopting {
		// Applied after the adoption, long after the sender's read buffer
		// has been reused for other frames. (A copy, so that m itself stays
		// on the stack on the common path.)
		kept := m
		kept.data = bytes.Clone(m.data)
		s.pending = append(s.pending, func() { s.deliverLocked(from, &kept) })
		return true, false
	}
	if s.moved {
		return false, true
	}
	return s.deliverLocked(from, &m), false
}

func (s *session) deliverLocked(from string, m *relayMsg) bool {
	if s.state != match.Chatting || s.chat.room != m.room || s.chat.partner != from {
		return false
	}
	s.emitLocked(m.appendFrame, m.size())
	return true
}
