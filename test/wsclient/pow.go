package wsclient

import (
	"bytes"
	"context"
	"encoding/json"

	"github.com/strangerchat/stranger/internal/pow"
)

// The client gives the proof of work a deployment asks for (protocol 1.1)
// the way the web client does, so that tests written for a deployment
// without it run unchanged against one with it: every challenge that
// arrives (welcome.pow, or error pow_required's pow) is solved at once on
// the reading goroutine, and every join or next sent afterwards carries
// the solution. Sending it more than once is harmless: the server checks
// pow only while the session owes it and ignores it afterwards; and a join
// refused before the check (bad_message, rate_limited) has not spent it.

// solve solves f's challenge, if it brings one.
func (c *Conn) solve(f Frame) {
	if c.manualPow || f["pow"] == nil {
		return
	}
	var ch pow.Challenge
	if err := f.Decode(&struct {
		Pow *pow.Challenge `json:"pow"`
	}{&ch}); err != nil || ch.Challenge == "" {
		return
	}
	payload, _, err := pow.Solve(context.Background(), ch)
	if err != nil {
		return // the server's next pow_required says what went wrong
	}
	c.powMu.Lock()
	c.pow = payload
	c.powMu.Unlock()
}

// Pow is the solution the client attaches to join and next ("" if no
// challenge came), for tests that check what the server does with it.
func (c *Conn) Pow() string {
	c.powMu.Lock()
	defer c.powMu.Unlock()
	return c.pow
}

// withPow adds the current solution to b if b is a JSON object of type join
// or next without a pow of its own. It inserts the member textually after
// the opening brace, so the rest of the frame goes out byte for byte as the
// test wrote it (odd spellings included).
func (c *Conn) withPow(b []byte) []byte {
	payload := c.Pow()
	if payload == "" {
		return b
	}
	var head struct {
		Type string          `json:"type"`
		Pow  json.RawMessage `json:"pow"`
	}
	if json.Unmarshal(b, &head) != nil || (head.Type != "join" && head.Type != "next") || head.Pow != nil {
		return b
	}
	i := bytes.IndexByte(b, '{')
	if i < 0 {
		return b
	}
	out := make([]byte, 0, len(b)+len(payload)+10)
	out = append(out, b[:i+1]...)
	out = append(out, `"pow":"`...)
	out = append(out, payload...)
	out = append(out, '"')
	if rest := bytes.TrimLeft(b[i+1:], " \t\r\n"); len(rest) > 0 && rest[0] != '}' {
		out = append(out, ',')
	}
	return append(out, b[i+1:]...)
}
