package signaling

import (
	"context"
	"errors"
	"time"

	"github.com/strangerchat/stranger/internal/ids"
	"github.com/strangerchat/stranger/internal/match"
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
	if !h.mayJoin(s) {
		return
	}
	if !h.mayRequeue(s, true) {
		return
	}
	prefs := match.Prefs{Mode: f.Mode, Interests: protocol.NormalizeInterests(f.Interests)}
	err := h.callFor(f, func(ctx context.Context) error { return h.engine.Join(ctx, s.id, prefs) })
	h.requeued(s, true, err)
	h.undoIfEnded(s)
	if err == nil {
		s.setPrefs(prefs)
	}
	h.engineError(s, err)
}

// mayJoin is join's state check: idle, and not banned.
func (h *Hub) mayJoin(s *session) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != match.Idle {
		s.errorLocked(protocol.CodeBadState, "join is only valid when idle; send next or leave first")
		return false
	}
	return !h.bannedLocked(s)
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

// report reports the current or recent partner.
func (h *Hub) report(s *session, f *protocol.Frame) {
	room, wasChatting, ok := s.reportable(f, h.clock.Now())
	if !ok {
		return
	}
	var reported ids.SessionID
	err := h.callFor(f, func(ctx context.Context) (err error) {
		reported, err = h.engine.Report(ctx, s.id)
		return err
	})
	if err != nil {
		h.engineError(s, err)
		h.repairViewLater(s, err) // the chat may have ended after all
		return
	}
	ip := s.reportedPartner(room, wasChatting)

	var reportedIP string
	if p := h.lookup(reported); p != nil {
		reportedIP = p.ipAddr()
	}
	h.metrics.Reports.Inc()
	if h.moderation != nil {
		h.moderation.Record(Report{Reporter: s.id, Reported: reported, ReporterIP: ip, ReportedIP: reportedIP, Room: room, Reason: f.Reason})
	}
}

// reportable is report's state check — a current chat, or one that ended
// within the engine's memory — then its limit. It returns the chat being
// reported.
func (s *session) reportable(f *protocol.Frame, now time.Time) (room match.RoomID, chatting, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	chatting = s.state == match.Chatting
	if !chatting && (s.lastChat.IsZero() || now.Sub(s.lastChat) > reportMemory) {
		s.errorLocked(protocol.CodeNotChatting, "no current or recent partner to report")
		return "", false, false
	}
	if err := protocol.CheckLimits(f); err != nil {
		s.errorLocked(err.Code, err.Message)
		return "", false, false
	}
	return s.chat.room, chatting, true
}

// reportedPartner applies a report the engine carried out: the reported
// chat, if it is still the current one, has ended. It returns the
// reporter's IP for moderation.
func (s *session) reportedPartner(room match.RoomID, wasChatting bool) (ip string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if wasChatting && s.state == match.Chatting && s.chat.room == room {
		s.endChatLocked()
		s.state = match.Idle
	}
	s.emitLocked(protocol.AppendReported, 32)
	return s.ip
}

func (s *session) ipAddr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ip
}

// bannedLocked answers `banned` if the session's IP is banned.
func (h *Hub) bannedLocked(s *session) bool {
	if h.moderation == nil || !h.moderation.Banned(s.ip) {
		return false
	}
	s.errorLocked(protocol.CodeBanned, "you are banned for a while after reports from other users")
	return true
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
