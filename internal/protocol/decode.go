// Package protocol is the wire format of Stranger's signaling protocol v1
// (docs/protocol.md): decoding and validating client frames, encoding server
// frames. It is pure: no I/O, no state, safe for concurrent use.
package protocol

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
)

// Type is a client frame type.
type Type uint8

// Client frame types of protocol v1.
const (
	TypeJoin Type = iota + 1
	TypeNext
	TypeLeave
	TypeSignal
	TypeChat
	TypeTyping
	TypeReport
	// TypePing is the heartbeat extension (docs/protocol.md, "Heartbeat"):
	// the server answers pong at once, in any state.
	TypePing
	// TypeWatch is the counts extension (docs/protocol.md, "Counts"): with
	// counts true the server pushes the online and waiting counts.
	TypeWatch
)

var typeNames = [...]string{"", "join", "next", "leave", "signal", "chat", "typing", "report", "ping", "watch"}

// String returns the wire name.
func (t Type) String() string {
	if int(t) < len(typeNames) && t != 0 {
		return typeNames[t]
	}
	return "unknown"
}

func parseType(s []byte) Type {
	switch string(s) {
	case "join":
		return TypeJoin
	case "next":
		return TypeNext
	case "leave":
		return TypeLeave
	case "signal":
		return TypeSignal
	case "chat":
		return TypeChat
	case "typing":
		return TypeTyping
	case "report":
		return TypeReport
	case "ping":
		return TypePing
	case "watch":
		return TypeWatch
	}
	return 0
}

// Limits of protocol v1.
const (
	MaxFrameBytes    = 64 << 10 // larger frames close the connection (1009)
	MaxSignalBytes   = 32 << 10 // signal.data as received
	MaxChatRunes     = 1000     // chat.text after trimming
	MaxReasonRunes   = 500      // report.reason
	MaxInterests     = 10       // kept after normalisation
	MaxInterestRunes = 32       // longer interests are dropped
	// MaxPowBytes bounds join.pow and next.pow (1.1, "Proof of work"): a
	// solution payload is about 330 bytes of base64, so a longer value is
	// not one and is refused as bad_message before anything hashes it.
	MaxPowBytes = 1024
)

// CheckLimits is step 5 of "Checking a client frame": it returns too_long
// if a field of the decoded frame f is over its limit, else nil. Decode
// does not do it because the state check (step 4) comes first and needs
// the session; the caller runs this after it. Interests over their limits
// are not refused but dropped (NormalizeInterests).
func CheckLimits(f *Frame) *Error {
	switch {
	case f.Type == TypeSignal && len(f.Data) > MaxSignalBytes:
		return &Error{Code: CodeTooLong, Message: "signal data is over 32 KiB"}
	case f.Type == TypeChat && utf8.RuneCountInString(f.Text) > MaxChatRunes:
		return &Error{Code: CodeTooLong, Message: "chat text is over 1000 characters"}
	case f.Type == TypeReport && utf8.RuneCountInString(f.Reason) > MaxReasonRunes:
		return &Error{Code: CodeTooLong, Message: "report reason is over 500 characters"}
	}
	return nil
}

// Frame is a decoded client frame. Fields a type does not use are zero.
// Data aliases the buffer passed to Decode.
type Frame struct {
	Type      Type
	Seq       int64 // valid when HasSeq
	HasSeq    bool
	Mode      Mode     // join: ModeVideo when absent
	Interests []string // join: as sent, not yet normalised
	Data      []byte   // signal: the raw JSON value, exactly as received
	Room      string   // signal: valid when HasRoom
	HasRoom   bool
	Text      string // chat: after text hygiene (hygiene.go), trimmed
	Typing    bool   // typing
	Reason    string // report: after text hygiene
	Counts    bool   // watch
	Pow       string // join, next: the proof-of-work solution payload, as sent ("" when absent)
}

// Error is a refusal of a client frame, sent back as an `error` frame.
type Error struct {
	Code    Code
	Message string
}

func (e *Error) Error() string { return string(e.Code) + ": " + e.Message }

func badMessage(format string, args ...any) *Error {
	return &Error{Code: CodeBadMessage, Message: fmt.Sprintf(format, args...)}
}

type decoder struct {
	buf bytes.Buffer
	dec jsontext.Decoder
}

var decoders = sync.Pool{New: func() any { return new(decoder) }}

// Decode parses and shape-checks one client frame (step 3 of "Checking a
// client frame"). Even when it returns an error it fills f.Seq/f.HasSeq if
// the frame carried a valid seq, because the duplicate check comes first.
// A frame that is not an object or has no string type is bad_message; an
// unknown type is unknown_type.
func Decode(b []byte, f *Frame) *Error {
	*f = Frame{}
	d := decoders.Get().(*decoder)
	defer func() {
		d.buf.Reset()
		d.dec.Reset(&d.buf) // drop references to b
		decoders.Put(d)
	}()
	d.buf.Reset()
	d.buf.Write(b) // copy: the decoder parses in place; Data aliases b below
	d.dec.Reset(&d.buf)

	var (
		typeRaw                                      []byte
		modeV, interestsV, dataV, roomV, textV, typV jsontext.Value
		reasonV, countsV, powV                       jsontext.Value
		seqErr, shapeErr                             *Error
	)
	tok, err := d.dec.ReadToken()
	if err != nil || tok.Kind() != '{' {
		return badMessage("a frame must be one JSON object")
	}
	for d.dec.PeekKind() != '}' {
		name, err := d.dec.ReadValue()
		if err != nil {
			return badMessage("invalid JSON: %v", shortErr(err))
		}
		if bytes.IndexByte(name, '\\') >= 0 {
			// A member name may be escaped ("typ\u0065" is "type"); the
			// decoder has already validated it, so unquoting cannot fail.
			unq, _ := jsontext.AppendUnquote(nil, name)
			name = jsontext.Value(quoteName(unq))
		}
		v, err := d.dec.ReadValue()
		if err != nil {
			return badMessage("invalid JSON: %v", shortErr(err))
		}
		switch string(name) {
		case `"type"`:
			if v.Kind() != '"' {
				shapeErr = firstErr(shapeErr, badMessage("field type must be a string"))
				continue
			}
			typeRaw = v
		case `"seq"`:
			seq, ok := parseInt(v)
			switch {
			case v.Kind() == 'n':
			case !ok:
				seqErr = badMessage("field seq must be an integer")
			default:
				f.Seq, f.HasSeq = seq, true
			}
		case `"mode"`:
			modeV = v
		case `"interests"`:
			interestsV = v
		case `"data"`:
			// Slice the caller's buffer, not the decoder's copy, so Data
			// stays valid after Decode returns. v holds the exact bytes of
			// the value without surrounding white space and ends where the
			// decoder's offset now stands. The capacity is capped so that
			// appending to Data cannot overwrite the rest of the frame.
			end := int(d.dec.InputOffset())
			dataV = jsontext.Value(b[end-len(v) : end : end])
		case `"room"`:
			roomV = v
		case `"text"`:
			textV = v
		case `"typing"`:
			typV = v
		case `"reason"`:
			reasonV = v
		case `"counts"`:
			countsV = v
		case `"pow"`:
			powV = v
		}
	}
	if _, err := d.dec.ReadToken(); err != nil {
		return badMessage("invalid JSON: %v", shortErr(err))
	}
	// Only the end of input may follow the object: a second value or any
	// trailing garbage makes the frame something other than one object.
	if _, err := d.dec.ReadToken(); !errors.Is(err, io.EOF) {
		return badMessage("a frame holds exactly one JSON object")
	}
	if shapeErr != nil {
		return shapeErr
	}
	if typeRaw == nil {
		return badMessage("missing string field type")
	}
	name := typeRaw[1 : len(typeRaw)-1]
	if bytes.IndexByte(name, '\\') >= 0 {
		unq, err := jsontext.AppendUnquote(nil, typeRaw)
		if err != nil {
			return badMessage("field type: %v", shortErr(err))
		}
		name = unq
	}
	f.Type = parseType(name)
	if f.Type == 0 {
		return &Error{Code: CodeUnknownType, Message: fmt.Sprintf("unknown message type %q", truncate(string(name), 40))}
	}
	if seqErr != nil {
		return seqErr
	}

	if f.Type == TypeJoin || f.Type == TypeNext {
		if err := decodePow(f, powV); err != nil {
			return err
		}
	}
	switch f.Type {
	case TypeJoin:
		f.Mode = ModeVideo
		if !isNull(modeV) {
			s, ok := str(modeV)
			if !ok {
				return badMessage("join: mode must be a string")
			}
			if f.Mode, ok = ParseMode(s); !ok {
				return badMessage("join: mode must be \"video\" or \"text\", not %q", truncate(s, 20))
			}
		}
		if !isNull(interestsV) {
			if interestsV.Kind() != '[' {
				return badMessage("join: interests must be an array of strings")
			}
			list, ok := strArray(interestsV)
			if !ok {
				return badMessage("join: interests must be an array of strings")
			}
			f.Interests = list
		}
	case TypeSignal:
		if isNull(dataV) {
			return badMessage("signal: field data is required")
		}
		f.Data = dataV
		if !isNull(roomV) {
			s, ok := str(roomV)
			if !ok {
				return badMessage("signal: room must be a string")
			}
			f.Room, f.HasRoom = s, true
		}
	case TypeChat:
		s, ok := str(textV)
		if isNull(textV) || !ok {
			return badMessage("chat: text must be a string")
		}
		f.Text = strings.TrimSpace(cleanChat(s))
		if f.Text == "" {
			return badMessage("chat: text is empty")
		}
	case TypeTyping:
		switch {
		case typV.Kind() == 't':
			f.Typing = true
		case typV.Kind() == 'f':
		default:
			return badMessage("typing: field typing must be a boolean")
		}
	case TypeReport:
		if !isNull(reasonV) {
			s, ok := str(reasonV)
			if !ok {
				return badMessage("report: reason must be a string")
			}
			f.Reason = cleanLine(s)
		}
	case TypeWatch:
		switch {
		case countsV.Kind() == 't':
			f.Counts = true
		case countsV.Kind() == 'f':
		default:
			return badMessage("watch: field counts must be a boolean")
		}
	}
	return nil
}

// decodePow reads the optional pow field of join and next: a string of at
// most MaxPowBytes bytes. Whether it is a good solution is for the server to
// judge (step 4), not the decoder.
func decodePow(f *Frame, v jsontext.Value) *Error {
	if isNull(v) {
		return nil
	}
	s, ok := str(v)
	if !ok {
		return badMessage("%s: pow must be a string", f.Type)
	}
	if len(s) > MaxPowBytes {
		return badMessage("%s: pow is over %d bytes; a solution is a few hundred", f.Type, MaxPowBytes)
	}
	f.Pow = s
	return nil
}

func firstErr(a, b *Error) *Error {
	if a != nil {
		return a
	}
	return b
}

// isNull reports whether an optional field is absent (missing or null).
func isNull(v jsontext.Value) bool { return len(v) == 0 || v.Kind() == 'n' }

func str(v jsontext.Value) (string, bool) {
	if v.Kind() != '"' {
		return "", false
	}
	if bytes.IndexByte(v, '\\') < 0 {
		// No escapes: the content is the string itself (the decoder has
		// validated its UTF-8); one allocation instead of two.
		return string(v[1 : len(v)-1]), true
	}
	b, err := jsontext.AppendUnquote(nil, v)
	if err != nil {
		return "", false
	}
	return string(b), true
}

func strArray(v jsontext.Value) ([]string, bool) {
	var d jsontext.Decoder
	d.Reset(bytes.NewReader(v))
	if tok, err := d.ReadToken(); err != nil || tok.Kind() != '[' {
		return nil, false
	}
	var out []string
	for d.PeekKind() != ']' {
		tok, err := d.ReadToken()
		if err != nil || tok.Kind() != '"' {
			return nil, false
		}
		out = append(out, tok.String())
	}
	return out, true
}

// parseInt accepts a JSON number that is a whole number (1, 1.0, 10e-1 and
// 1e3 are integers in JSON's sense; 1.5 is not) of magnitude below 10^18.
// It works on the decimal digits, not a float64, so it is exact: a float
// would turn 9007199254740993 into ...992 and accept 4503599627370496.5.
// v must be a valid JSON value (the decoder has checked it).
func parseInt(v jsontext.Value) (int64, bool) {
	if v.Kind() != '0' {
		return 0, false
	}
	neg := v[0] == '-'
	if neg {
		v = v[1:]
	}
	// Split into integer digits, fraction digits and exponent.
	i := 0
	for i < len(v) && v[i] >= '0' && v[i] <= '9' {
		i++
	}
	intPart, rest := v[:i], v[i:]
	var frac []byte
	if len(rest) > 0 && rest[0] == '.' {
		j := 1
		for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
			j++
		}
		frac, rest = rest[1:j], rest[j:]
	}
	exp := 0
	if len(rest) > 0 { // 'e' or 'E', sign, digits
		rest = rest[1:]
		expNeg := false
		if rest[0] == '+' || rest[0] == '-' {
			expNeg = rest[0] == '-'
			rest = rest[1:]
		}
		for _, c := range rest {
			if exp < 1e6 { // saturate; far beyond any digit count in 64 KiB
				exp = exp*10 + int(c-'0')
			}
		}
		if expNeg {
			exp = -exp
		}
	}
	// The value is digits(intPart+frac) * 10^(exp-len(frac)). Strip leading
	// and trailing zeros of the significant digits to judge it.
	digits := func(k int) byte { // k-th significant digit
		if k < len(intPart) {
			return intPart[k]
		}
		return frac[k-len(intPart)]
	}
	lo, hi := 0, len(intPart)+len(frac)
	for lo < hi && digits(lo) == '0' {
		lo++
	}
	if lo == hi {
		return 0, true // zero, in any spelling
	}
	exp -= len(frac)
	for digits(hi-1) == '0' {
		hi--
		exp++
	}
	if exp < 0 || hi-lo+exp > 18 { // a fraction, or too large to be exact
		return 0, false
	}
	var x int64
	for k := lo; k < hi; k++ {
		x = x*10 + int64(digits(k)-'0')
	}
	for ; exp > 0; exp-- {
		x *= 10
	}
	if neg {
		x = -x
	}
	return x, true
}

// quoteName re-quotes an unescaped member name so that it can be compared
// with the quoted names in Decode's switch. Names that need escaping again
// cannot equal any field Decode knows, so a plain quote is enough.
func quoteName(unq []byte) []byte {
	out := make([]byte, 0, len(unq)+2)
	out = append(out, '"')
	out = append(out, unq...)
	return append(out, '"')
}

func shortErr(err error) string { return truncate(err.Error(), 120) }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// NormalizeInterests applies text hygiene (hygiene.go), then matching rule 2
// in its order: trim, lower-case, drop empty ones and ones over 32 code
// points, remove duplicates (first kept), keep the first 10. It never fails.
// Hygiene runs after lower-casing so that the result is in NFC whatever
// lower-casing did to a composed letter; trimming white space can neither
// undo NFC (white space does not compose) nor bring a control back.
func NormalizeInterests(in []string) []string {
	out := make([]string, 0, min(len(in), MaxInterests))
	for _, s := range in {
		s = strings.TrimSpace(cleanLine(strings.ToLower(s)))
		if s == "" || utf8.RuneCountInString(s) > MaxInterestRunes {
			continue
		}
		dup := false
		for _, o := range out {
			if o == s {
				dup = true
				break
			}
		}
		if dup {
			continue
		}
		out = append(out, s)
		if len(out) == MaxInterests {
			break
		}
	}
	return out
}
