package signaling

import (
	"bytes"
	"context"
	"errors"

	"github.com/strangerchat/stranger/internal/ids"
	"github.com/strangerchat/stranger/internal/match"
	"github.com/strangerchat/stranger/internal/protocol"
)

// The relay path: a signal, chat or typing frame that handleFrame admitted
// goes from the sender's session to its partner's, on this node (deliver)
// or through the cluster to the node holding the partner (relayRemote,
// DeliverRemote). The partner's session checks, under its own lock, that
// it is still in that chat with that sender.

// relay sends a signal, chat or typing frame to the partner.
func (h *Hub) relay(s *session, f *protocol.Frame) {
	room, partner, ok := s.relayTarget(f)
	if !ok {
		return
	}
	p := h.lookup(partner)
	if p == nil {
		if h.cluster != nil {
			h.relayRemote(s, f, room, partner)
		}
		return // the partner is gone; its end reaches this session as peer_left
	}
	m := relayMsg{typ: f.Type, room: room, data: f.Data, text: f.Text, typing: f.Typing}
	ok, moved := p.deliver(s.id, m)
	if moved && h.cluster != nil {
		h.relayRemote(s, f, room, partner) // handed over to another node
		return
	}
	if !ok {
		// The engine tells the two sessions of a new chat one after the
		// other, so this session may already answer its matched (the
		// initiator sends its offer at once) before the partner's matched
		// has reached the partner's view: dropping the message would lose
		// the offer. An engine call about the partner returns only after
		// every event caused before it has been passed on (the ordering
		// contract in engine.go), so after it the partner's view is
		// current; if the message still does not fit, the partner has
		// really left that chat. Only this rare path pays for the call.
		_ = h.call(func(ctx context.Context) error {
			_, err := h.engine.State(ctx, partner)
			return err
		})
		ok, moved = p.deliver(s.id, m)
		if moved && h.cluster != nil {
			h.relayRemote(s, f, room, partner)
			return
		}
	}
	if ok {
		h.metrics.relayed[f.Type].Inc()
	}
}

// relayTarget checks a relayed frame against the sender's chat (step 4 of
// "Checking a client frame", then the limits) and returns where it goes.
// A refusal is answered with an error frame and ok false.
func (s *session) relayTarget(f *protocol.Frame) (room match.RoomID, partner ids.SessionID, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != match.Chatting {
		s.errorLocked(protocol.CodeNotChatting, f.Type.String()+" is only valid while chatting")
		return "", "", false
	}
	if f.Type == protocol.TypeSignal && f.HasRoom && match.RoomID(f.Room) != s.chat.room {
		s.errorLocked(protocol.CodeNotChatting, "signal for a room that is not your current chat")
		return "", "", false
	}
	if err := protocol.CheckLimits(f); err != nil {
		s.errorLocked(err.Code, err.Message)
		return "", "", false
	}
	if f.Type == protocol.TypeChat {
		s.lines.add(s.chat.room, true, f.Text, s.hub.clock.Now())
	}
	return s.chat.room, s.chat.partner, true
}

// relayMsg is a partner's signal, chat or typing message on its way to this
// session. Data may alias the sender's read buffer, which is reused as soon
// as the frame has been handled: anything kept past the call must copy it.
type relayMsg struct {
	typ    protocol.Type
	room   match.RoomID
	data   []byte // signal
	text   string // chat
	typing bool   // typing
}

func (m *relayMsg) appendFrame(dst []byte, seq int64) []byte {
	switch m.typ {
	case protocol.TypeSignal:
		return protocol.AppendSignal(dst, seq, string(m.room), m.data)
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
// candidate never reaches a new partner. moved: the session was handed
// over to another node, where the message must follow it.
func (s *session) deliver(from ids.SessionID, m relayMsg) (ok, moved bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch s.phase {
	case phaseArriving:
		// Applied after the adoption, long after the sender's read buffer
		// has been reused for other frames. (A copy, so that m itself stays
		// on the stack on the common path.)
		kept := m
		kept.data = bytes.Clone(m.data)
		s.pending = append(s.pending, func() { s.deliverLocked(from, &kept) })
		return true, false
	case phaseMoved:
		return false, true
	}
	return s.deliverLocked(from, &m), false
}

func (s *session) deliverLocked(from ids.SessionID, m *relayMsg) bool {
	if s.state != match.Chatting || s.chat.room != m.room || s.chat.partner != from {
		return false
	}
	if m.typ == protocol.TypeChat {
		s.lines.add(m.room, false, m.text, s.hub.clock.Now())
	}
	s.emitLocked(m.appendFrame, m.size())
	return true
}

// Relayed message kinds on the wire between nodes.
const (
	wireSignal byte = 's'
	wireChat   byte = 'c'
	wireTyping byte = 't'
)

// encodeRelay: kind, from, '\n', room, '\n', body.
func encodeRelay(kind byte, from ids.SessionID, room match.RoomID, body []byte) []byte {
	b := make([]byte, 0, 3+len(from)+len(room)+len(body))
	b = append(b, kind)
	b = append(b, from...)
	b = append(b, '\n')
	b = append(b, room...)
	b = append(b, '\n')
	return append(b, body...)
}

// relayRemote sends a relay to a partner that is not on this node.
func (h *Hub) relayRemote(s *session, f *protocol.Frame, room match.RoomID, partner ids.SessionID) {
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

// DeliverRemote delivers a message relayed from another node to a session
// of this node. It runs on the node's receiving goroutine, in order.
func (h *Hub) DeliverRemote(to ids.SessionID, payload []byte) {
	if len(payload) < 3 {
		return
	}
	kind, rest := payload[0], payload[1:]
	i := bytes.IndexByte(rest, '\n')
	if i < 0 {
		return
	}
	from, rest := ids.SessionID(rest[:i]), rest[i+1:]
	j := bytes.IndexByte(rest, '\n')
	if j < 0 {
		return
	}
	room, body := match.RoomID(rest[:j]), rest[j+1:]
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
