package signaling

import (
	"context"

	"github.com/strangerchat/stranger/internal/ids"
	"github.com/strangerchat/stranger/internal/match"
)

// Engine is the seam to the chat state and the matcher (package match). Every
// method changes the state of one session atomically and reports what follows
// through the engine's match.Notifier; the session code never reads or writes
// chat state any other way, so an in-memory engine and a Redis one are
// interchangeable.
//
// Ordering contract: before a method returns, every event it caused for
// sessions of this node — and every event for them that was caused before it
// ran — has been passed to this node's Notifier. The in-memory engine calls
// Notify synchronously; a distributed engine waits until its own events have
// come back (e.g. a marker published after them on the node's channel). The
// session code relies on this when it updates its own view after Leave or
// Report: no older event can arrive after that update.
type Engine interface {
	// Join puts an idle session in the queue with prefs (EventWaiting, then
	// EventMatched to both when a partner is found). match.ErrBadState if the
	// session is not idle; match.ErrOverloaded if the queue is full.
	Join(ctx context.Context, session ids.SessionID, prefs match.Prefs) error
	// Next ends the current chat if any (partner: EventPeerLeft "next") and
	// queues the session again with the prefs of its last Join. While waiting
	// it does nothing.
	Next(ctx context.Context, session ids.SessionID, prefs match.Prefs) error
	// Leave ends the chat (partner: EventPeerLeft "left") or leaves the
	// queue; the session becomes idle. While idle it does nothing.
	Leave(ctx context.Context, session ids.SessionID) error
	// Report reports the current partner (chat ends, partner: EventPeerLeft
	// "reported", the pair is never matched again) or, while idle or waiting,
	// the last partner if that chat ended within 60 s (state unchanged).
	// Never again means for the report block (24 h), by session and, when
	// both identities captured at the match are known and differ, by
	// identity. It returns the reported chat as the engine kept it — the
	// identities included, even if the partner has ended or its node has
	// gone; match.ErrNotChatting if there is none.
	Report(ctx context.Context, session ids.SessionID) (match.Reported, error)
	// SetConnected marks the session's connection as dropped (false) or back
	// (true). A disconnected session is never matched; on reconnect a waiting
	// session keeps its place and its interest-timeout clock.
	SetConnected(ctx context.Context, session ids.SessionID, connected bool) error
	// End removes the session for good (grace period over, client close, rate
	// abuse). Its partner, if any, gets EventPeerLeft with reason.
	End(ctx context.Context, session ids.SessionID, reason match.Reason) error
	// State returns the session's current state (Idle for unknown sessions).
	State(ctx context.Context, session ids.SessionID) (match.State, error)
}
