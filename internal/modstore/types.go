package modstore

import (
	"errors"
	"fmt"
	"time"

	"github.com/strangerchat/stranger/internal/identity"
)

// ReportID names a report. The store makes it (AddReport).
type ReportID string

// Status is where a report stands in the operator's queue.
type Status string

// The statuses of the contract. A report starts open; a moderator dismisses
// it or acts on it (a ban that names it).
const (
	StatusOpen      Status = "open"
	StatusDismissed Status = "dismissed"
	StatusActioned  Status = "actioned"
)

func (s Status) valid() bool {
	return s == StatusOpen || s == StatusDismissed || s == StatusActioned
}

// Side says who wrote a chat message, seen from the report.
type Side string

// The two sides of a reported chat.
const (
	SideReporter Side = "reporter"
	SideReported Side = "reported"
)

// Message is one chat line as the server relayed it.
type Message struct {
	From Side
	Text string
	At   time.Time
}

// Report is what the server witnessed when one person reported another.
// Times are kept to the microsecond.
type Report struct {
	ID              ReportID
	At              time.Time
	Reason          string
	Mode            string // "video" or "text", as on the wire
	CommonInterests []string
	ChatDuration    time.Duration // how long the chat lasted, to the millisecond
	Reporter        identity.Hash
	Reported        identity.Hash
	Messages        []Message
	Evidence        bool // an image is stored (PutEvidence); set by the store
	Status          Status
}

// Evidence is the one image a reporter may upload for a report.
type Evidence struct {
	ContentType string
	Data        []byte
}

// Source says who made a ban.
type Source string

// The sources of the contract.
const (
	SourceAuto      Source = "auto"      // enough distinct identities reported it
	SourceModerator Source = "moderator" // through the operator API
)

// Ban keeps an identity from chatting until Until, or for ever when Until is
// the zero time.
type Ban struct {
	Identity identity.Hash
	Until    time.Time // zero: permanent
	Reason   string
	Source   Source
	Reports  []ReportID // the reports it acts on; they become actioned
	At       time.Time
}

// Permanent reports whether the ban has no end.
func (b Ban) Permanent() bool { return b.Until.IsZero() }

// ActiveAt reports whether the ban is in force at t.
func (b Ban) ActiveAt(t time.Time) bool { return b.Permanent() || b.Until.After(t) }

// ReportQuery selects reports for the operator's queue.
type ReportQuery struct {
	Status Status   // "" = every status
	Limit  int      // 1–MaxLimit
	Before ReportID // "" = from the newest; else only reports older than this one
}

// MaxLimit is the largest ReportQuery.Limit.
const MaxLimit = 200

// Counts are the figures of the operator's stats.
type Counts struct {
	ReportsSince int // reports made at or after the time asked for
	BansActive   int
}

// Swept says what Sweep deleted.
type Swept struct {
	Reports  int
	Evidence int
	Bans     int
}

// ErrNotFound is matched (errors.Is) by every NotFoundError.
var ErrNotFound = errors.New("not found")

// NotFoundError says which thing was not there.
type NotFoundError struct {
	What string // "report", "evidence", "ban"
	Key  string // its id or identity hash
}

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("modstore: %s %q not found", e.What, e.Key)
}

// Is makes errors.Is(err, ErrNotFound) true.
func (e *NotFoundError) Is(target error) bool { return target == ErrNotFound }

// ErrInvalid is matched by errors for input the store refuses to record
// (a report without identities, an unknown status, a limit out of range).
var ErrInvalid = errors.New("invalid")

func invalid(format string, args ...any) error {
	return fmt.Errorf("modstore: %s: %w", fmt.Sprintf(format, args...), ErrInvalid)
}

// ErrEvidenceExists is returned by PutEvidence for a report that already
// has its image: one upload per report.
var ErrEvidenceExists = errors.New("modstore: the report already has evidence")
