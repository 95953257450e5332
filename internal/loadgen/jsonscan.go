package loadgen

import (
	"errors"
	"strconv"
)

// The load generator runs on the same two cores as the server it measures,
// so every CPU cycle it spends parsing is taken from the server. It reads
// server frames with this small scanner instead of reflection-based JSON:
// it walks the top-level members once and hands out raw slices, without
// allocating. It is strict enough for frames a correct server writes;
// anything it cannot walk is reported as a bad frame.

var errBadJSON = errors.New("malformed JSON")

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// skipString returns the index just past the string starting at b[i] == '"'.
func skipString(b []byte, i int) (int, error) {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1, nil
		}
	}
	return 0, errBadJSON
}

// skipValue returns the index just past the JSON value starting at b[i].
func skipValue(b []byte, i int) (int, error) {
	if i >= len(b) {
		return 0, errBadJSON
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				j, err := skipString(b, i)
				if err != nil {
					return 0, err
				}
				i = j - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1, nil
				}
			}
		}
		return 0, errBadJSON
	default: // number, true, false, null
		j := i
		for j < len(b) {
			c := b[j]
			if c == ',' || c == '}' || c == ']' || isSpace(c) {
				break
			}
			j++
		}
		if j == i {
			return 0, errBadJSON
		}
		return j, nil
	}
}

// scanObject calls fn with each member of the JSON object b: the key as it
// appears between its quotes (escapes not decoded) and the raw value.
func scanObject(b []byte, fn func(key, val []byte)) error {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return errBadJSON
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return nil
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return errBadJSON
		}
		ke, err := skipString(b, i)
		if err != nil {
			return err
		}
		key := b[i+1 : ke-1]
		i = skipSpace(b, ke)
		if i >= len(b) || b[i] != ':' {
			return errBadJSON
		}
		i = skipSpace(b, i+1)
		ve, err := skipValue(b, i)
		if err != nil {
			return err
		}
		fn(key, b[i:ve])
		i = skipSpace(b, ve)
		if i >= len(b) {
			return errBadJSON
		}
		if b[i] == '}' {
			return nil
		}
		if b[i] != ',' {
			return errBadJSON
		}
		i = skipSpace(b, i+1)
	}
}

// rawInt parses a raw JSON integer.
func rawInt(v []byte) (int64, bool) {
	n, err := strconv.ParseInt(string(v), 10, 64) // no allocation: the conversion is optimised away
	return n, err == nil
}

// leadingInt parses the decimal digits at the start of the raw JSON string
// v (quotes included): the send timestamp that chat texts begin with.
func leadingInt(v []byte) (int64, bool) {
	if len(v) < 2 || v[0] != '"' {
		return 0, false
	}
	var n int64
	i := 1
	for ; i < len(v) && v[i] >= '0' && v[i] <= '9' && i < 20; i++ {
		n = n*10 + int64(v[i]-'0')
	}
	return n, i > 1
}

// serverFrame is the part of a server frame the load generator looks at.
// Every slice aliases the frame buffer.
type serverFrame struct {
	typ       []byte // without quotes
	seq       int64
	hasSeq    bool
	room      []byte // raw, quotes included
	initiator bool
	mode      []byte // without quotes
	data      []byte // raw JSON value
	text      []byte // raw, quotes included
	code      []byte // without quotes
	reason    []byte // without quotes
	pow       []byte // raw JSON value: a proof-of-work challenge (welcome, pow_required)
}

func unquoted(v []byte) []byte {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		return v[1 : len(v)-1]
	}
	return nil
}

func parseServerFrame(b []byte, f *serverFrame) error {
	*f = serverFrame{}
	var bad bool
	err := scanObject(b, func(k, v []byte) {
		switch string(k) {
		case "type":
			f.typ = unquoted(v)
			bad = bad || f.typ == nil
		case "seq":
			f.seq, f.hasSeq = rawInt(v)
			bad = bad || !f.hasSeq
		case "room":
			f.room = v
		case "initiator":
			f.initiator = string(v) == "true"
		case "mode":
			f.mode = unquoted(v)
		case "data":
			f.data = v
		case "text":
			f.text = v
		case "code":
			f.code = unquoted(v)
		case "reason":
			f.reason = unquoted(v)
		case "pow":
			f.pow = v
		}
	})
	if err != nil {
		return err
	}
	if bad || f.typ == nil {
		return errBadJSON
	}
	return nil
}

// signalData is what the load generator reads back from a relayed signal.
type signalData struct {
	t         int64 // send time, unix ns; 0 when absent
	sdp       bool
	candidate bool
	endOfCand bool // {"candidate": null}
}

func parseSignalData(b []byte, d *signalData) error {
	*d = signalData{}
	return scanObject(b, func(k, v []byte) {
		switch string(k) {
		case "t":
			d.t, _ = rawInt(v)
		case "sdp":
			d.sdp = true
		case "candidate":
			d.candidate = true
			d.endOfCand = string(v) == "null"
		}
	})
}
