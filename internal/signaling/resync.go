package signaling

import (
	"context"

	"github.com/strangerchat/stranger/internal/ids"
	"github.com/strangerchat/stranger/internal/match"
	"github.com/strangerchat/stranger/internal/protocol"
)

// Resync brings the view of every session of this node in line with the
// engine's record, after messages for this node may have been lost: its
// subscription broke during a Redis blip, or Redis lost its data or declared
// this node dead (fenced). A chat the engine no longer has ends with
// peer_left "disconnected", a missed match is announced, and a session that
// lost its queue place joins again with its last preferences. When fenced,
// each session first tells the engine again that it is here.
func (h *Hub) Resync(ctx context.Context, fenced bool, snapshot func(context.Context, ids.SessionID) (match.Snapshot, bool, error)) {
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
	return !s.phase.here()
}

// resyncOne brings s's view in line with the engine's record (see Resync)
// and reports whether anything had to change.
func (h *Hub) resyncOne(ctx context.Context, s *session, snapshot func(context.Context, ids.SessionID) (match.Snapshot, bool, error)) (repaired bool, err error) {
	if s.notHere() {
		return false, nil
	}
	snap, ok, err := snapshot(ctx, s.id)
	if err != nil {
		return false, err
	}
	evs, rejoin, prefs := s.repair(snap, ok)
	if rejoin {
		if prefs.Mode == 0 {
			prefs.Mode = protocol.ModeVideo
		}
		if err := h.engine.Join(ctx, s.id, prefs); err != nil {
			h.log.Warn("resync: rejoin", "session", string(s.id), "err", err)
		}
	}
	return len(evs) > 0 || rejoin, nil
}

// repair applies to s's view what the engine's record says it missed
// (match.Repair) and tells whether it must join the queue again, with prefs.
func (s *session) repair(snap match.Snapshot, found bool) (evs []match.Event, rejoin bool, prefs match.Prefs) {
	s.mu.Lock()
	defer s.mu.Unlock()
	evs, rejoin = match.Repair(match.View{State: s.state, Room: s.chat.room}, snap, found)
	for _, ev := range evs {
		s.applyEventLocked(ev)
	}
	return evs, rejoin, s.prefs
}
