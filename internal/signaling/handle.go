package signaling

import (
	"context"
	"errors"
	"time"

	"github.com/strangerchat/stranger/internal/identity"
	"github.com/strangerchat/stranger/internal/match"
	"github.com/strangerchat/stranger/internal/modstore"
	"github.com/strangerchat/stranger/internal/protocol"
)

// engineTimeout bounds one engine call (a Redis round trip, in the worst case).
const engineTimeout = 3 * time.Second

// reportMemory is how long after a chat ended its partner can still be
// reported: the engine remembers the last partner that long (protocol.md).
const reportMemory = 60 * time.Second

// The handlers of the frame types that change the chat state: join, next,
// leave and report (relay.go has signal, chat and typing). handleFrame in
// conn.go calls them after the checks every frame passes; each reads what it
// needs under s.mu, calls the engine with no lock held, then applies the
// result under s.mu.

// join puts an idle session in the queue.
func (h *Hub) join(s *session, f *protocol.Frame) {
	who, ok := h.mayJoin(s)
	if !ok {
		return
	}
	if !h.mayRequeue(s, true) {
		return
	}
	prefs := match.Prefs{Mode: f.Mode, Interests: protocol.NormalizeInterests(f.Interests), Identity: who}
	err := h.callFor(f, func(ctx context.Context) error { return h.engine.Join(ctx, s.id, prefs) })
	h.requeued(s, true, err)
	h.undoIfEnded(s)
	if err == nil {
		s.setPrefs(prefs)
	}
	h.engineError(s, err)
}

// mayJoin is join's state check: idle, and not banned. It returns who is
// joining, which the engine keeps with the chat.
func (h *Hub) mayJoin(s *session) (identity.Hash, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != match.Idle {
		s.errorLocked(protocol.CodeBadState, "join is only valid when idle; send next or leave first")
		return "", false
	}
	return s.who, !h.bannedLocked(s)
}

func (s *session) setPrefs(p match.Prefs) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.prefs = p
}

// next ends the current chat, if any, and queues the session again.
func (h *Hub) next(s *session, f *protocol.Frame) {
	prefs, ok := h.nextPrefs(s)
	if !ok {
		return
	}
	requeues := !s.isWaiting() // a next while waiting does nothing: no quota
	if !h.mayRequeue(s, requeues) {
		return
	}
	err := h.callFor(f, func(ctx context.Context) error { return h.engine.Next(ctx, s.id, prefs) })
	h.requeued(s, requeues, err)
	h.undoIfEnded(s)
	h.engineError(s, err)
}

// nextPrefs is next's state check (not banned) and the preferences of the
// session's last join (video if it never joined).
func (h *Hub) nextPrefs(s *session) (match.Prefs, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if h.bannedLocked(s) {
		return match.Prefs{}, false
	}
	prefs := s.prefs
	if prefs.Mode == 0 {
		prefs.Mode = protocol.ModeVideo
	}
	prefs.Identity = s.who
	return prefs, true
}

// leave ends the chat or leaves the queue; valid in every state.
func (h *Hub) leave(s *session, f *protocol.Frame) {
	err := h.callFor(f, func(ctx context.Context) error { return h.engine.Leave(ctx, s.id) })
	if err == nil {
		s.becomeIdle()
	}
	h.engineError(s, err)
	h.repairViewLater(s, err) // it may have left after all
}

// becomeIdle applies a leave the engine carried out. The engine's ordering
// contract (engine.go) guarantees no older event arrives after it.
func (s *session) becomeIdle() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.endChatLocked()
	s.state = match.Idle
}

// report reports the current or recent partner, and records the report
// with what the server witnessed of the chat.
func (h *Hub) report(s *session, f *protocol.Frame) {
	current, ok := h.mayReport(s, f, h.clock.Now())
	if !ok {
		return
	}
	var r match.Reported
	err := h.callFor(f, func(ctx context.Context) (err error) {
		r, err = h.engine.Report(ctx, s.id)
		return err
	})
	if err != nil {
		h.engineError(s, err)
		h.repairViewLater(s, err) // the chat may have ended after all
		return
	}
	h.metrics.Reports.Inc()
	lines := s.endReported(current, r.Room)
	filed := h.fileReport(s, r, f.Reason, lines)
	s.acknowledgeReport(filed)
}

// mayReport is report's state check — a current chat, or one that ended
// within the engine's memory — then its limit, then the reporter's report
// rate. It returns the current chat's room ("" when not chatting).
func (h *Hub) mayReport(s *session, f *protocol.Frame, now time.Time) (current match.RoomID, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != match.Chatting && (s.lastChat.IsZero() || now.Sub(s.lastChat) > reportMemory) {
		s.errorLocked(protocol.CodeNotChatting, "no current or recent partner to report")
		return "", false
	}
	if err := protocol.CheckLimits(f); err != nil {
		s.errorLocked(err.Code, err.Message)
		return "", false
	}
	if h.moderation != nil && s.who != "" && !h.moderation.AllowReport(s.who) {
		s.errorLocked(protocol.CodeRateLimited, "too many reports from your connection; try again later")
		return "", false
	}
	return s.chat.room, true
}

// endReported applies a report the engine carried out: the chat the
// session was in when it reported (current, "" if none), if it is still the
// current one, has ended. It returns the last messages of the reported chat
// as this session saw them relayed.
func (s *session) endReported(current, reported match.RoomID) []modstore.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	if current != "" && s.state == match.Chatting && s.chat.room == current {
		s.endChatLocked()
		s.state = match.Idle
	}
	return s.lines.messages(reported)
}

// acknowledgeReport answers `reported`, naming the recorded report.
func (s *session) acknowledgeReport(f Filed) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.emitLocked(func(dst []byte, seq int64) []byte {
		return protocol.AppendReportedFiled(dst, seq, string(f.Report), f.EvidenceToken)
	}, 96+len(f.EvidenceToken))
}

// undoIfEnded removes s from the engine again if it ended while its Join or
// Next was on the way: end() may call engine.End before that call reaches the
// engine (a resume that finds the frames it needs released ends the session
// while its old connection is still reading), and the engine would then keep
// — and match — a session that no longer exists (rule 7).
func (h *Hub) undoIfEnded(s *session) {
	if s.ended() {
		h.endEngine(s.id, match.ReasonDisconnected)
	}
}

func (s *session) ended() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.phase == phaseEnded
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
		h.log.Warn("engine error", "session", string(s.id), "err", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errorLocked(code, msg)
}

// pong answers a heartbeat ping (docs/protocol.md, "Heartbeat") in any
// state. Its ack is the highest client seq processed, which includes every
// frame this connection read before the ping: frames are handled in order.
func (s *session) pong() {
	s.mu.Lock()
	defer s.mu.Unlock()
	ack := s.inSeq
	s.emitLocked(func(dst []byte, seq int64) []byte {
		return protocol.AppendPong(dst, seq, ack)
	}, 48)
}
