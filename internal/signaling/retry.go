package signaling

import (
	"context"
	"errors"
	"time"

	"github.com/strangerchat/stranger/internal/ids"
	"github.com/strangerchat/stranger/internal/match"
)

// Engine calls the node must not lose. A client's own action that fails for
// want of the engine (Redis slow or away) is answered with overloaded and the
// client tries again; but some calls have no client to try again:
//
//   - End after a grace period or a client close: if it is lost, the engine
//     keeps the session — a ghost its partner stays chatting with;
//   - SetConnected after a drop or a resume: if it is lost, the engine
//     matches a session that is away, or never matches one that is back;
//   - a Leave or Report that timed out may still have been carried out, and
//     neither tells the session itself anything: its view would keep a chat
//     the engine has ended.
//
// So these are retried in the background, with backoff, until they succeed
// or the node stops. Each retry is one goroutine; retriesPending counts them.

const (
	retryFirst = 50 * time.Millisecond
	retryMax   = 2 * time.Second
)

// retry runs op until it returns true, backing off between attempts; it
// gives up when the hub stops.
func (h *Hub) retry(op func(ctx context.Context) (done bool)) {
	h.retriesPending.Add(1)
	go func() {
		defer h.retriesPending.Add(-1)
		wait := retryFirst
		for {
			select {
			case <-h.stop:
				return
			case <-time.After(wait):
			}
			var done bool
			_ = h.call(func(ctx context.Context) error { done = op(ctx); return nil })
			if done {
				return
			}
			wait = min(2*wait, retryMax)
		}
	}()
}

// RetriesPending is the number of engine calls being retried in the
// background (see retry.go); zero once the engine has caught up.
func (h *Hub) RetriesPending() int { return int(h.retriesPending.Load()) }

// endEngine removes an ended session from the engine, retrying until it
// is done: a lost End leaves a ghost in the engine.
func (h *Hub) endEngine(id ids.SessionID, reason match.Reason) {
	err := h.call(func(ctx context.Context) error { return h.engine.End(ctx, id, reason) })
	if err == nil {
		return
	}
	h.log.Warn("engine: end; retrying", "session", string(id), "err", err)
	h.retry(func(ctx context.Context) bool {
		return h.engine.End(ctx, id, reason) == nil
	})
}

// syncConnectedLater retries syncConnected: each attempt tells the engine
// the connection state the session has at that moment (under engineMu, so
// attempts never reorder). A session that drops and comes back several
// times while the engine is away gets several retries; they are redundant,
// not wrong, and end once the engine answers.
func (h *Hub) syncConnectedLater(s *session) {
	h.retry(func(ctx context.Context) bool {
		return h.trySyncConnected(ctx, s) == nil
	})
}

// snapshotter is an engine that can tell a session's whole record (the
// Redis engine): what repairViewLater needs.
type snapshotter interface {
	Snapshot(ctx context.Context, id ids.SessionID) (match.Snapshot, bool, error)
}

// repairViewLater brings s's view in line with the engine's record after
// an operation on s failed in a way that may have been carried out anyway
// (the engine answered too late). The in-memory engine never does that.
func (h *Hub) repairViewLater(s *session, err error) {
	sn, ok := h.engine.(snapshotter)
	if !ok || !errors.Is(err, match.ErrOverloaded) {
		return
	}
	h.retry(func(ctx context.Context) bool {
		_, err := h.resyncOne(ctx, s, sn.Snapshot)
		return err == nil
	})
}
