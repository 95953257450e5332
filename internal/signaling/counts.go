package signaling

import (
	"github.com/strangerchat/stranger/internal/match"
	"github.com/strangerchat/stranger/internal/protocol"
)

// The counts extension (docs/protocol.md, "Counts"): a session that sent
// watch {counts: true} gets a counts frame at once and then whenever the
// numbers changed, at most once per ping-free tick of Run (countsTick).

// waitingCounter is an engine that can count the waiting sessions per mode
// (match.Memory and match.Redis can). Without one, waiting counts are 0.
type waitingCounter interface {
	Stats() match.Stats
}

// counts is what a counts frame says.
type counts struct {
	online, video, text int
}

func (h *Hub) currentCounts() counts {
	c := counts{online: h.onlineCount()}
	if wc, ok := h.engine.(waitingCounter); ok {
		st := wc.Stats()
		c.video, c.text = st.Waiting[protocol.ModeVideo], st.Waiting[protocol.ModeText]
	}
	return c
}

// watch turns the session's subscription on or off; on, it answers with the
// counts at once.
func (h *Hub) watch(s *session, on bool) {
	s.mu.Lock()
	was := s.watchCounts
	s.watchCounts = on
	s.mu.Unlock()
	switch {
	case on && !was:
		h.watchers.Add(1)
	case !on && was:
		h.watchers.Add(-1)
	}
	if on {
		c := h.currentCounts()
		s.mu.Lock()
		s.sendCountsLocked(c)
		s.mu.Unlock()
	}
}

// unwatch drops a session that is forgotten from the watchers' count.
func (h *Hub) unwatch(s *session) {
	s.mu.Lock()
	was := s.watchCounts
	s.watchCounts = false
	s.mu.Unlock()
	if was {
		h.watchers.Add(-1)
	}
}

func (s *session) sendCountsLocked(c counts) {
	s.emitLocked(func(dst []byte, seq int64) []byte {
		return protocol.AppendCounts(dst, seq, c.online, c.video, c.text)
	}, 96)
}

// pushCounts sends the counts to every watching session if they changed
// since the last push. Only Run's goroutine calls it, so last needs no lock.
func (h *Hub) pushCounts(last *counts) {
	if h.watchers.Load() == 0 {
		return
	}
	c := h.currentCounts()
	if c == *last {
		return
	}
	*last = c
	for _, s := range h.snapshot() {
		s.mu.Lock()
		if s.watchCounts && s.conn != nil {
			s.sendCountsLocked(c)
		}
		s.mu.Unlock()
	}
}
