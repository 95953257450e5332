// Package match owns every session's chat state (idle, waiting, chatting; the
// room and partner) together with the waiting queue and the matching rules of
// protocol.md. It changes that state atomically — a join, a next, a leave, a
// match, a disconnect — and reports each consequence as an Event to the
// session concerned, through a Notifier, in the order it happened.
//
// memory.go is the single-node implementation; a Redis one implements the same
// contract with Lua scripts, so the signaling layer never knows which it has.
package match

import (
	"errors"
	"fmt"
	"time"

	"github.com/strangerchat/stranger/internal/identity"
	"github.com/strangerchat/stranger/internal/ids"
	"github.com/strangerchat/stranger/internal/protocol"
)

// Errors returned by an engine. Callers map them to protocol error codes.
var (
	// ErrBadState: join while not idle.
	ErrBadState = errors.New("match: session is not idle")
	// ErrNotChatting: report with no current chat and no partner in the last 60 s.
	ErrNotChatting = errors.New("match: no current or recent partner")
	// ErrOverloaded: the queue is full or the backend is unreachable.
	ErrOverloaded = errors.New("match: overloaded")
)

// RoomID names one chat (one match of two sessions). It lives here, not in
// package ids, because rooms are created by the engines of this package and
// only this package and the layers above it use them.
type RoomID string

// State of a session's chat.
type State uint8

// The states of protocol.md ("Session states").
const (
	Idle State = iota
	Waiting
	Chatting
)

// String returns the wire name of the state.
func (s State) String() string {
	switch s {
	case Waiting:
		return "waiting"
	case Chatting:
		return "chatting"
	}
	return "idle"
}

// Prefs are what a session asks for in join: the mode and its interests,
// already normalised (protocol.NormalizeInterests), and who asks.
type Prefs struct {
	Mode      protocol.Mode
	Interests []string
	// Identity is the session's network identity as a hash, "" when the
	// deployment does not know it. The engine captures both sides' at the
	// match (see Reported) and keeps reported pairs of identities apart.
	Identity identity.Hash
}

// checkPrefs refuses prefs an engine cannot keep: a mode that does not
// exist, an identity that is not a hash (it is stored and compared as one;
// a Redis key holds it).
func checkPrefs(op string, p Prefs) error {
	if !validMode(p.Mode) {
		return fmt.Errorf("match: %s with invalid mode %d", op, p.Mode)
	}
	if p.Identity != "" {
		if _, err := identity.ParseHash(string(p.Identity)); err != nil {
			return fmt.Errorf("match: %s: %w", op, err)
		}
	}
	return nil
}

// Reported is the chat a report was about, as the engine kept it. It is
// complete even when the reported session has ended since (closed tab) or
// lived on a node that has gone: everything in it was captured with the
// chat, on the reporter's side.
type Reported struct {
	Partner ids.SessionID // the reported session
	Room    RoomID
	Mode    protocol.Mode
	Common  []string  // the interests both shared (never nil)
	Started time.Time // when the chat began (the match)
	// Ended is when the chat ended; the report's time if it was still on
	// (the report ended it).
	Ended time.Time
	// Reporter and Suspect are the identities of the reporting and the
	// reported session as they were at the match ("" if unknown).
	Reporter identity.Hash
	Suspect  identity.Hash
}

// Reason says why a chat ended, as sent in peer_left.
type Reason string

// The reasons of protocol.md.
const (
	ReasonNext         Reason = "next"
	ReasonLeft         Reason = "left"
	ReasonDisconnected Reason = "disconnected"
	ReasonReported     Reason = "reported"
)

// EventKind tells what an Event reports.
type EventKind uint8

// Event kinds.
const (
	// EventWaiting: the session entered the queue.
	EventWaiting EventKind = iota + 1
	// EventMatched: a partner was found. Room, Partner, Initiator, Mode and
	// Common are set.
	EventMatched
	// EventPeerLeft: the chat ended from the partner's side; the session is
	// idle now. Room (of the chat that ended) and Reason are set.
	EventPeerLeft
)

// Event is one consequence of a state change, addressed to one session.
type Event struct {
	Kind      EventKind
	Room      RoomID
	Partner   ids.SessionID
	Initiator bool
	Mode      protocol.Mode
	Common    []string // interests both share, possibly empty (never nil when matched)
	Reason    Reason
	// Waited is how long the session waited in the queue (EventMatched only).
	Waited time.Duration
}

// Notifier receives events. Engines call Notify in the order the changes
// happened, possibly while holding their own locks: it must not block and
// must not call back into the engine.
type Notifier interface {
	Notify(session ids.SessionID, ev Event)
}
