package signaling

import (
	"context"
	"errors"
	"time"
	"unicode/utf8"

	"github.com/strangerchat/stranger/internal/match"
	"github.com/strangerchat/stranger/internal/protocol"
)

// engineTimeout bounds one engine call (a Redis round trip, in the worst case).
const engineTimeout = 3 * time.Second

// handleFrame checks one client frame in the order of protocol.md ("Checking
// a client frame") and carries it out. It runs on the connection's reader
// goroutine, so frames of one connection are handled in order.
func (h *Hub) handleFrame(c *conn, b []byte) {
	s := c.s
	s.frameMu.Lock() // one frame at a time per session, across connections
	defer s.frameMu.Unlock()
	now := h.clock.Now()

	// 1. Rate budget, before parsing anything.
	s.mu.Lock()
	if s.conn != c || s.ended {
		s.mu.Unlock()
		return
	}
	if !s.budget.take(now, h.opts.MsgRate, h.opts.MsgBurst) {
		level := s.abuse.add(now, h.opts.MsgRate)
		if level > float64(2*h.opts.MsgBurst) {
			s.mu.Unlock()
			h.log.Info("closing connection for rate abuse", "session", s.id, "ip", c.ip)
			c.closeWith(closePolicy, "far over the message rate")
			return
		}
		s.errorLocked(protocol.CodeRateLimited, "too many messages; slow down")
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()

	// 2. Duplicate, 3. shape.
	var f protocol.Frame
	perr := protocol.Decode(b, &f)
	s.mu.Lock()
	if f.HasSeq {
		if f.Seq <= s.inSeq {
			s.mu.Unlock()
			return // re-sent after a resume: already processed
		}
		s.inSeq = f.Seq
	}
	if perr != nil {
		s.errorLocked(perr.Code, perr.Message)
		s.mu.Unlock()
		return
	}

	switch f.Type {
	case protocol.TypeSignal, protocol.TypeChat, protocol.TypeTyping:
		h.relay(s, &f) // unlocks s.mu
	case protocol.TypeJoin:
		if s.state != match.Idle {
			s.errorLocked(protocol.CodeBadState, "join is only valid when idle; send next or leave first")
			s.mu.Unlock()
			return
		}
		if h.banned(s) {
			s.mu.Unlock()
			return
		}
		prefs := match.Prefs{Mode: f.Mode, Interests: protocol.NormalizeInterests(f.Interests)}
		s.mu.Unlock()
		err := h.callFor(&f, func(ctx context.Context) error { return h.engine.Join(ctx, s.id, prefs) })
		h.undoIfEnded(s)
		if err == nil {
			s.mu.Lock()
			s.prefs = prefs
			s.mu.Unlock()
		}
		h.engineError(s, err)
	case protocol.TypeNext:
		if h.banned(s) {
			s.mu.Unlock()
			return
		}
		prefs := s.prefs
		if prefs.Mode == 0 {
			prefs.Mode = protocol.ModeVideo
		}
		s.mu.Unlock()
		err := h.callFor(&f, func(ctx context.Context) error { return h.engine.Next(ctx, s.id, prefs) })
		h.undoIfEnded(s)
		h.engineError(s, err)
	case protocol.TypeLeave:
		s.mu.Unlock()
		err := h.callFor(&f, func(ctx context.Context) error { return h.engine.Leave(ctx, s.id) })
		if err == nil {
			s.mu.Lock()
			s.endChatLocked()
			s.state = match.Idle
			s.mu.Unlock()
		}
		h.engineError(s, err)
		h.repairViewLater(s, err) // it may have left after all
	case protocol.TypeReport:
		h.report(s, &f) // unlocks s.mu
	default:
		s.mu.Unlock()
	}
}

// undoIfEnded removes s from the engine again if it ended while its Join or
// Next was on the way: end() may call engine.End before that call reaches the
// engine (a resume that finds the frames it needs released ends the session
// while its old connection is still reading), and the engine would then keep
// — and match — a session that no longer exists (rule 7).
func (h *Hub) undoIfEnded(s *session) {
	s.mu.Lock()
	ended := s.ended
	s.mu.Unlock()
	if !ended {
		return
	}
	h.endEngine(s.id, match.ReasonDisconnected)
}

// relay sends a signal, chat or typing frame to the partner. Called with
// s.mu held; releases it.
func (h *Hub) relay(s *session, f *protocol.Frame) {
	if s.state != match.Chatting {
		s.errorLocked(protocol.CodeNotChatting, f.Type.String()+" is only valid while chatting")
		s.mu.Unlock()
		return
	}
	room, partner := s.chat.room, s.chat.partner
	if f.Type == protocol.TypeSignal && f.HasRoom && f.Room != room {
		s.errorLocked(protocol.CodeNotChatting, "signal for a room that is not your current chat")
		s.mu.Unlock()
		return
	}
	switch {
	case f.Type == protocol.TypeSignal && len(f.Data) > protocol.MaxSignalBytes:
		s.errorLocked(protocol.CodeTooLong, "signal data is over 32 KiB")
		s.mu.Unlock()
		return
	case f.Type == protocol.TypeChat && utf8.RuneCountInString(f.Text) > protocol.MaxChatRunes:
		s.errorLocked(protocol.CodeTooLong, "chat text is over 1000 characters")
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()

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

// report handles a report frame. Called with s.mu held; releases it.
func (h *Hub) report(s *session, f *protocol.Frame) {
	// State first: a report needs a current chat or one that ended within
	// the engine's memory (60 s); then the reason's length.
	recent := s.state == match.Chatting || (!s.lastChat.IsZero() && h.clock.Now().Sub(s.lastChat) <= 60*time.Second)
	if !recent {
		s.errorLocked(protocol.CodeNotChatting, "no current or recent partner to report")
		s.mu.Unlock()
		return
	}
	if utf8.RuneCountInString(f.Reason) > protocol.MaxReasonRunes {
		s.errorLocked(protocol.CodeTooLong, "report reason is over 500 characters")
		s.mu.Unlock()
		return
	}
	room, wasChatting := s.chat.room, s.state == match.Chatting
	s.mu.Unlock()

	var reported string
	err := h.callFor(f, func(ctx context.Context) (err error) {
		reported, err = h.engine.Report(ctx, s.id)
		return err
	})
	if err != nil {
		h.engineError(s, err)
		h.repairViewLater(s, err) // the chat may have ended after all
		return
	}
	s.mu.Lock()
	if wasChatting && s.state == match.Chatting && s.chat.room == room {
		s.endChatLocked()
		s.state = match.Idle
	}
	s.emitLocked(protocol.AppendReported, 32)
	ip := s.ip
	s.mu.Unlock()

	var reportedIP string
	if p := h.lookup(reported); p != nil {
		reportedIP = p.ipAddr()
	}
	h.metrics.Reports.Inc()
	if h.moderation != nil {
		h.moderation.Record(Report{Reporter: s.id, Reported: reported, ReporterIP: ip, ReportedIP: reportedIP, Room: room, Reason: f.Reason})
	}
}

func (s *session) ipAddr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ip
}

// banned answers `banned` if the session's IP is banned. Called with s.mu held.
func (h *Hub) banned(s *session) bool {
	if h.moderation == nil || !h.moderation.Banned(s.ip) {
		return false
	}
	s.errorLocked(protocol.CodeBanned, "you are banned for a while after reports from other users")
	return true
}

// callFor is call for the engine operation of client frame f: the engine
// records f's seq with the change, so a resume after this node's death knows
// which client frames were processed.
func (h *Hub) callFor(f *protocol.Frame, fn func(ctx context.Context) error) error {
	if !f.HasSeq {
		return h.call(fn)
	}
	return h.call(func(ctx context.Context) error { return fn(match.WithInSeq(ctx, f.Seq)) })
}

func (h *Hub) call(f func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), engineTimeout)
	defer cancel()
	return f(ctx)
}

// engineError turns an engine refusal into an error frame.
func (h *Hub) engineError(s *session, err error) {
	if err == nil {
		return
	}
	code, msg := protocol.CodeOverloaded, "the server cannot do this now; try again shortly"
	switch {
	case errors.Is(err, match.ErrBadState):
		code, msg = protocol.CodeBadState, "not valid in the session's current state"
	case errors.Is(err, match.ErrNotChatting):
		code, msg = protocol.CodeNotChatting, "no current or recent partner"
	case errors.Is(err, match.ErrOverloaded):
	default:
		h.log.Warn("engine error", "session", s.id, "err", err)
	}
	s.mu.Lock()
	s.errorLocked(code, msg)
	s.mu.Unlock()
}
