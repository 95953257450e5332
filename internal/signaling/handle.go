package signaling

import (
	"context"
	"errors"
	"time"

	"github.com/strangerchat/stranger/internal/match"
	"github.com/strangerchat/stranger/internal/protocol"
)

// engineTimeout bounds one engine call (a Redis round trip, in the worst case).
const engineTimeout = 3 * time.Second

// reportMemory is how long after a chat ended its partner can still be
// reported: the engine remembers the last partner that long (protocol.md).
const reportMemory = 60 * time.Second

// handleFrame checks one client frame in the order of protocol.md ("Checking
// a client frame") and carries it out. It runs on the connection's reader
// goroutine, so frames of one connection are handled in order.
//
// Every step below follows one pattern: read what it needs from the
// session under s.mu (and answer a refusal there), call the engine with no
// lock held, then apply the result under s.mu. No lock is held across a
// function boundary.
func (h *Hub) handleFrame(c *conn, b []byte) {
	s := c.s
	s.frameMu.Lock() // one frame at a time per session, across connections
	defer s.frameMu.Unlock()

	// 1. Rate budget, before parsing anything.
	switch s.spend(c, h.clock.Now(), h.opts.MsgRate, h.opts.MsgBurst) {
	case budgetAbused:
		h.log.Info("closing connection for rate abuse", "session", s.id, "ip", c.ip)
		c.closeWith(closePolicy, "far over the message rate")
		return
	case budgetRefused, budgetStale:
		return
	}
	// 2. Duplicate, 3. shape.
	var f protocol.Frame
	if !s.accept(&f, protocol.Decode(b, &f)) {
		return
	}
	// 4. State and 5. limits, per type.
	switch f.Type {
	case protocol.TypeSignal, protocol.TypeChat, protocol.TypeTyping:
		h.relay(s, &f)
	case protocol.TypeJoin:
		h.join(s, &f)
	case protocol.TypeNext:
		h.next(s, &f)
	case protocol.TypeLeave:
		h.leave(s, &f)
	case protocol.TypeReport:
		h.report(s, &f)
	case protocol.TypePing:
		s.pong()
	case protocol.TypeWatch:
		h.watch(s, f.Counts)
	}
}

// pong answers a heartbeat ping in any state. Its ack is the highest client
// seq processed, which includes every frame this connection read before the
// ping: frames are handled in order.
func (s *session) pong() {
	s.mu.Lock()
	defer s.mu.Unlock()
	ack := s.inSeq
	s.emitLocked(func(dst []byte, seq int64) []byte {
		return protocol.AppendPong(dst, seq, ack)
	}, 48)
}

// budgetVerdict is the outcome of step 1 for one frame.
type budgetVerdict uint8

const (
	budgetOK      budgetVerdict = iota
	budgetRefused               // answered with rate_limited
	budgetAbused                // far over the rate: the connection is closed
	budgetStale                 // c is no longer the session's connection
)

// spend takes a frame's token from the rate budget (step 1).
func (s *session) spend(c *conn, now time.Time, rate float64, burst int) budgetVerdict {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.phase != phaseConnected || s.conn != c {
		return budgetStale
	}
	if s.budget.take(now, rate, burst) {
		return budgetOK
	}
	if s.abuse.add(now, rate) > float64(2*burst) {
		return budgetAbused
	}
	s.errorLocked(protocol.CodeRateLimited, "too many messages; slow down")
	return budgetRefused
}

// accept runs steps 2 and 3 on a decoded frame: a seq already processed is
// ignored, and a decode error is answered. It records f's seq as processed
// either way (a refused frame was processed too).
func (s *session) accept(f *protocol.Frame, decodeErr *protocol.Error) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f.HasSeq {
		if f.Seq <= s.inSeq {
			return false // re-sent after a resume: already processed
		}
		s.inSeq = f.Seq
	}
	if decodeErr != nil {
		s.errorLocked(decodeErr.Code, decodeErr.Message)
		return false
	}
	return true
}

// join puts an idle session in the queue.
func (h *Hub) join(s *session, f *protocol.Frame) {
	if !h.mayJoin(s) {
		return
	}
	prefs := match.Prefs{Mode: f.Mode, Interests: protocol.NormalizeInterests(f.Interests)}
	err := h.callFor(f, func(ctx context.Context) error { return h.engine.Join(ctx, s.id, prefs) })
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
	err := h.callFor(f, func(ctx context.Context) error { return h.engine.Next(ctx, s.id, prefs) })
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
func (s *session) reportable(f *protocol.Frame, now time.Time) (room string, chatting, ok bool) {
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
func (s *session) reportedPartner(room string, wasChatting bool) (ip string) {
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
		h.log.Warn("engine error", "session", s.id, "err", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errorLocked(code, msg)
}
