package protocol

// Mode is the kind of chat a session asks for. Only sessions of the same mode
// are matched (matching rule 1).
type Mode uint8

// The modes of protocol v1. The zero Mode is invalid.
const (
	ModeVideo Mode = iota + 1
	ModeText
)

// String returns the wire name ("video", "text").
func (m Mode) String() string {
	switch m {
	case ModeVideo:
		return "video"
	case ModeText:
		return "text"
	}
	return "invalid"
}

// ParseMode maps a wire name to a Mode; ok is false for anything else.
func ParseMode(s string) (m Mode, ok bool) {
	switch s {
	case "video":
		return ModeVideo, true
	case "text":
		return ModeText, true
	}
	return 0, false
}

// Modes lists every valid mode, for metrics and per-mode queues.
var Modes = [...]Mode{ModeVideo, ModeText}
