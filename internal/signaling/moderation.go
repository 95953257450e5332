package signaling

import (
	"context"
	"net/http"
	"time"

	"github.com/strangerchat/stranger/internal/identity"
	"github.com/strangerchat/stranger/internal/match"
	"github.com/strangerchat/stranger/internal/modstore"
	"github.com/strangerchat/stranger/internal/protocol"
)

// Moderator is the deployment's moderation as the hub uses it (the contract
// in docs/moderation.md): bans known in memory, reports filed durably. Nil in
// Options: no reports are kept and nobody is banned.
type Moderator interface {
	// Banned reports whether who is banned now. It is called on every join
	// and next, so it must answer from memory, never from a database.
	Banned(who identity.Hash) bool
	// AllowReport spends one of who's reports; false: over its rate.
	AllowReport(who identity.Hash) bool
	// File records a report (and may ban its subject when enough distinct
	// people reported it). It returns the report's id and the token its
	// evidence image may be uploaded with.
	File(ctx context.Context, r modstore.Report) (Filed, error)
}

// Filed is a recorded report, as the `reported` frame names it.
type Filed struct {
	Report        modstore.ReportID
	EvidenceToken string
}

// transcriptLines is how many chat lines a session keeps of its chat: the
// last 20 are what a report carries (moderation.md, Reports).
const transcriptLines = 20

// line is one chat message of the session's chat as this node relayed it.
type line struct {
	Mine bool      `json:"mine"` // sent by this session, else by its partner
	Text string    `json:"text"`
	At   time.Time `json:"at"`
}

// transcript is the last transcriptLines chat messages of one chat: the one
// the session is in, or the last one it was in. It is replaced by the next
// match, dropped once the chat is over for longer than a report can come
// (60 s after it ended: protocol.md, report; checked with every ping round,
// forgetLocked) and goes when the session ends. A report copies the lines
// into its record; nothing else keeps them.
type transcript struct {
	Room  match.RoomID `json:"room"`
	Lines []line       `json:"lines,omitempty"`
}

func (t *transcript) add(room match.RoomID, mine bool, text string, at time.Time) {
	if t.Room != room {
		*t = transcript{Room: room}
	}
	if len(t.Lines) == transcriptLines {
		copy(t.Lines, t.Lines[1:])
		t.Lines = t.Lines[:transcriptLines-1]
	}
	t.Lines = append(t.Lines, line{Mine: mine, Text: text, At: at})
}

// forgetLocked drops the lines of a chat that ended more than reportMemory
// before now (the session's state and last chat's end as given; called
// with the session's lock held).
func (t *transcript) forgetLocked(state match.State, ended, now time.Time) {
	if len(t.Lines) == 0 || state == match.Chatting || ended.IsZero() || now.Sub(ended) <= reportMemory {
		return
	}
	*t = transcript{}
}

// messages returns the lines of room as a report carries them, seen from
// the reporter (this session).
func (t *transcript) messages(room match.RoomID) []modstore.Message {
	if t.Room != room {
		return nil
	}
	out := make([]modstore.Message, len(t.Lines))
	for i, l := range t.Lines {
		from := modstore.SideReported
		if l.Mine {
			from = modstore.SideReporter
		}
		out[i] = modstore.Message{From: from, Text: l.Text, At: l.At}
	}
	return out
}

// fileReport records the report of chat r that session s made, and returns
// what the `reported` frame tells the client. A store that fails loses the
// report's record (logged and counted) but not its effect: the chat has
// ended and the pair is blocked already.
func (h *Hub) fileReport(s *session, r match.Reported, reason string, lines []modstore.Message) Filed {
	if h.moderation == nil || r.Reporter == "" || r.Suspect == "" {
		return Filed{}
	}
	rec := modstore.Report{
		At:              h.clock.Now(),
		Reason:          reason,
		Mode:            r.Mode.String(),
		CommonInterests: r.Common,
		ChatDuration:    r.Ended.Sub(r.Started),
		Reporter:        r.Reporter,
		Reported:        r.Suspect,
		Messages:        lines,
	}
	if rec.ChatDuration < 0 {
		rec.ChatDuration = 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), engineTimeout)
	defer cancel()
	f, err := h.moderation.File(ctx, rec)
	if err != nil {
		h.metrics.ReportsLost.Inc()
		h.log.Error("report not recorded", "session", string(s.id), "reporter", r.Reporter, "reported", r.Suspect, "err", err)
		return Filed{}
	}
	return f
}

// bannedLocked answers `banned` if the session's identity is banned.
func (h *Hub) bannedLocked(s *session) bool {
	if h.moderation == nil || s.who == "" || !h.moderation.Banned(s.who) {
		return false
	}
	s.errorLocked(protocol.CodeBanned, bannedMessage)
	return true
}

const bannedMessage = "you cannot chat for a while: other people reported this connection"

// closeBanned is the close status of a connection whose identity was banned
// while it was open (docs/protocol.md, "Bans while connected").
const closeBanned = 4003

// EndBanned ends the sessions of who on this node: a ban has just started.
// Each connection closes with status 4003 "banned", and its partner gets
// `peer_left` `reported`; a new connection's join or next gets `banned`.
// The moderation service calls it on every node of the deployment, sessions
// in their grace period included.
func (h *Hub) EndBanned(who identity.Hash) {
	if who == "" {
		return
	}
	for _, s := range h.snapshot() {
		if s.identity() != who {
			continue
		}
		// No error frame first: the close frame goes out at once, ahead of
		// frames still queued, so the close itself says it (4003 "banned").
		d, ok := s.leave(phaseEnded, nil)
		if !ok {
			continue
		}
		h.forget(s, d, closeBanned, "banned")
		h.dropToken(d.token)
		h.endEngine(s.id, match.ReasonReported)
		h.metrics.Ended.WithLabelValues("banned").Inc()
		h.log.Info("session ended by a ban", "session", string(s.id), "identity", who)
	}
}

func (s *session) identity() identity.Hash {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.who
}

// Identity is the identity of an HTTP request's client, resolved as for a
// WebSocket (trusted proxies included): the operator API limits failed
// token attempts by it.
func (h *Hub) Identity(r *http.Request) identity.Hash {
	if h.opts.Identify == nil {
		return ""
	}
	return h.opts.Identify(clientIP(r, h.opts.ClientIP))
}
