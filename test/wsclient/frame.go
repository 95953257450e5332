// Package wsclient is the protocol client of the Go system tests: it speaks
// docs/protocol.md to a Stranger node over a real WebSocket.
//
// A Conn is one WebSocket: dialling, a reader goroutine that decodes every
// server frame, and the check that server seq runs 1, 2, 3, … without a gap
// or a repeat (continuing across resumes). A Client is one session over
// successive Conns: it numbers the frames it sends, keeps them until a
// welcome's lastSeq says the server has them, and resumes with the token
// and the highest seq taken (?resume=TOKEN&last=N), re-sending the rest.
//
// The conformance suite drives Conns one by one (it checks what a resume
// does, so it makes each step itself); the cluster tests and the WebRTC
// peer use Client.
package wsclient

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Frame is a decoded server frame. Numbers are json.Number, so values pass
// through exactly.
type Frame map[string]any

// decodeFrame decodes b, which must be exactly one JSON object.
func decodeFrame(b []byte) (Frame, error) {
	var f Frame
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&f); err != nil || dec.More() || f == nil {
		return nil, fmt.Errorf("%w: not one JSON object: %q", ErrBadFrame, truncate(b, 200))
	}
	return f, nil
}

// Type returns the frame's type field.
func (f Frame) Type() string { return f.Str("type") }

// Str returns a string field ("" if absent or not a string).
func (f Frame) Str(k string) string { s, _ := f[k].(string); return s }

// Int returns an integer field and whether it is one.
func (f Frame) Int(k string) (int64, bool) {
	n, ok := f[k].(json.Number)
	if !ok {
		return 0, false
	}
	v, err := n.Int64()
	return v, err == nil
}

// Bool returns a boolean field and whether it is one.
func (f Frame) Bool(k string) (bool, bool) { b, ok := f[k].(bool); return b, ok }

// Decode converts the frame into v, a struct with json tags.
func (f Frame) Decode(v any) error {
	b, err := json.Marshal(map[string]any(f))
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func (f Frame) String() string {
	b, _ := json.Marshal(map[string]any(f))
	return truncate(b, 300)
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

// ResumeQuery is the query of a resume: resume=TOKEN, and &last=LAST unless
// last is "". Both go in as they are, so a test can send a token or a last
// that is not valid.
func ResumeQuery(token, last string) string {
	q := "resume=" + token
	if last != "" {
		q += "&last=" + last
	}
	return q
}
