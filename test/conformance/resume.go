package conformance

import (
	"strings"
	"testing"
	"time"

	"github.com/strangerchat/stranger/test/wsclient"
)

// resumeCases: protocol.md "Resume: a dropped socket loses nothing".
func resumeCases() []testCase {
	return []testCase{
		{name: "resume/drop_partner_notices_nothing_chat_kept", run: testResumeKeepsChat},
		{name: "resume/old_token_stops_working", run: testResumeOldToken},
		{name: "resume/unknown_token_new_session", run: testResumeUnknownToken},
		{name: "resume/frames_while_down_resent_with_original_seq", run: testResumeResendsHeld},
		{name: "resume/last_N_resends_frames_after_N", run: testResumeLastN},
		{name: "resume/last_omitted_or_invalid_is_last_written", run: testResumeLastOmitted},
		{name: "resume/last_negative_counts_as_zero", run: testResumeLastNegative},
		{name: "resume/last_above_highest_counts_as_highest", run: testResumeLastAbove},
		{name: "resume/client_resends_after_lastSeq_duplicates_ignored", run: testResumeClientResend},
		{name: "resume/frame_sent_into_dying_connection_delivered_once", run: testResumeDyingFrame},
		{name: "resume/lastSeq_zero_when_none", run: testResumeLastSeqZero},
		{name: "resume/state_waiting", run: testResumeWaiting},
		{name: "resume/state_describes_session_after_resent_frames", run: testResumeStateAfterResent},
		{name: "resume/state_consistent_with_frames_written_to_dead_connection", run: testResumeStateRace},
		{name: "resume/open_old_connection_closed_4001", run: testResumeTakeover},
		{name: "resume/within_grace", run: testResumeWithinGrace},
		{name: "resume/grace_expiry_ends_session_peer_left_disconnected", run: testResumeGraceExpiry},
		{name: "resume/held_over_256KiB_ends_session", run: testResumeHeldLimit,
			opts: func(o *Options) { o.MsgBurst = 1000 }},
		{name: "resume/released_frames_lossless_or_ended", run: testResumeReleased, opts: pingOpts},
	}
}

func testResumeKeepsChat(t *testing.T, e *env) {
	a, b := e.client(t), e.client(t)
	join(t, a, "text", "Go", "chess")
	mb := joinMatched(t, b, "text", "go")
	ma := a.Expect(t, "matched")
	a.Drop()
	b.ExpectNothing(t)
	a2 := e.resumeLast(t, a)
	w := a2.Welcome
	if w.Str("state") != "chatting" {
		t.Fatalf("state %q, want chatting: %s", w.Str("state"), w)
	}
	chat, _ := w["chat"].(map[string]any)
	if chat == nil {
		t.Fatalf("resumed welcome without chat: %s", w)
	}
	if chat["room"] != ma.Str("room") || chat["initiator"] != ma["initiator"] || chat["mode"] != "text" ||
		!sameSet(strs(chat["commonInterests"]), strs(ma["commonInterests"])) {
		t.Fatalf("resumed chat %v, want what matched said: %s", chat, ma)
	}
	if _, ok := w.Int("lastSeq"); !ok {
		t.Fatalf("resumed welcome without integer lastSeq: %s", w)
	}
	if _, ok := w["iceServers"].([]any); !ok {
		t.Fatalf("resumed welcome without iceServers: %s", w)
	}
	if n, ok := w.Int("online"); !ok || n < 1 || (e.d.Nodes() == 1 && n != 2) {
		t.Fatalf("resumed welcome online %v, want 2", w["online"])
	}
	a2.Send(t, M{"type": "chat", "text": "a"})
	b.Expect(t, "chat")
	b.Send(t, M{"type": "signal", "data": 1, "room": mb.Str("room")})
	if a2.Expect(t, "signal").Str("room") != ma.Str("room") {
		t.Fatal("signal after resume in a different room")
	}
	b.ExpectNothing(t)
}

func testResumeOldToken(t *testing.T, e *env) {
	a, b, _, _ := e.pair(t, "")
	a.Drop()
	a2 := e.resumeLast(t, a)
	e.resumeFails(t, a.Token, a.Session)
	// The resumed connection is unaffected and its new token works.
	a2.Send(t, M{"type": "chat", "text": "x"})
	b.Expect(t, "chat")
	a2.Drop()
	e.resumeLast(t, a2)
	b.ExpectNothing(t)
}

func testResumeUnknownToken(t *testing.T, e *env) {
	for _, tok := range []string{"bogus", strings.Repeat("A", 32), "%00"} {
		e.resumeFails(t, tok, "")
	}
}

func testResumeResendsHeld(t *testing.T, e *env) {
	a, b, _, _ := e.pair(t, "")
	a.Drop()
	e.waitOnline(t, 1) // the server noticed: what follows is kept, not written
	b.Send(t, M{"type": "chat", "text": "while you were away"})
	b.Send(t, M{"type": "typing", "typing": true})
	b.Send(t, M{"type": "signal", "data": M{"sdp": "o"}})
	n := a.Last()
	a2 := e.resumeLast(t, a)
	if f := a2.Expect(t, "chat"); f.Str("text") != "while you were away" {
		t.Fatalf("re-sent %s", f)
	}
	a2.Expect(t, "typing")
	a2.Expect(t, "signal")
	if a2.Last() != n+3 {
		t.Fatalf("seq %d after three re-sent frames, want %d", a2.Last(), n+3)
	}
	b.Send(t, M{"type": "chat", "text": "live"})
	a2.Expect(t, "chat") // seq n+4, checked by Expect
}

func testResumeLastN(t *testing.T, e *env) {
	a, b, _, _ := e.pair(t, "")
	for i := range 3 {
		b.Send(t, M{"type": "chat", "text": itoa(int64(i))})
		a.Expect(t, "chat")
	}
	k := a.Last()
	a.Drop()
	a2 := e.resume(t, a, itoa(k-2), k-2)
	for i := 1; i <= 2; i++ {
		if f := a2.Expect(t, "chat"); f.Str("text") != itoa(int64(i)) {
			t.Fatalf("re-sent %s, want chat %d", f, i)
		}
	}
	a2.ExpectNothing(t)
}

func testResumeLastOmitted(t *testing.T, e *env) {
	a, b, _, _ := e.pair(t, "")
	b.Send(t, M{"type": "chat", "text": "x"})
	a.Expect(t, "chat")
	a.Drop()
	a2 := e.resume(t, a, "", a.Last())
	a2.ExpectNothing(t)
	b.Send(t, M{"type": "chat", "text": "y"})
	a2.Expect(t, "chat")
	a2.Drop()
	a3 := e.resume(t, a2, "abc", a2.Last())
	a3.ExpectNothing(t)
	b.Send(t, M{"type": "chat", "text": "z"})
	if a3.Expect(t, "chat").Str("text") != "z" {
		t.Fatal("relay after resume")
	}
}

func testResumeLastNegative(t *testing.T, e *env) {
	a, _, _, _ := e.pair(t, "")
	k := a.Last()
	a.Drop()
	a2 := e.resume(t, a, "-5", 0)
	for a2.Last() < k { // seq 1..k again, checked in order by Next
		if _, err := a2.NextWithin(expectTimeout); err != nil {
			t.Fatalf("last=-5: frames up to %d not all re-sent: %v", k, err)
		}
	}
	a2.ExpectNothing(t)
}

func testResumeLastAbove(t *testing.T, e *env) {
	a, b, _, _ := e.pair(t, "")
	a.Drop()
	a2 := e.resume(t, a, "1000", a.Last())
	a2.ExpectNothing(t)
	b.Send(t, M{"type": "chat", "text": "next seq"})
	a2.Expect(t, "chat") // seq continues at the highest sent + 1
}

func testResumeClientResend(t *testing.T, e *env) {
	a, b, _, _ := e.pair(t, "")
	a.Send(t, M{"type": "chat", "text": "c1", "seq": 1})
	a.Send(t, M{"type": "chat", "text": "c2", "seq": 2})
	b.Expect(t, "chat")
	b.Expect(t, "chat")
	a.Drop()
	a2 := e.resumeLast(t, a)
	if n, ok := a2.Welcome.Int("lastSeq"); !ok || n != 2 {
		t.Fatalf("lastSeq %v, want 2", a2.Welcome["lastSeq"])
	}
	a2.Send(t, M{"type": "chat", "text": "c1", "seq": 1})
	a2.Send(t, M{"type": "chat", "text": "c2", "seq": 2})
	a2.Send(t, M{"type": "chat", "text": "c3", "seq": 3})
	if f := b.Expect(t, "chat"); f.Str("text") != "c3" {
		t.Fatalf("partner got %s, want only c3", f)
	}
	b.ExpectNothing(t)
	a2.ExpectNothing(t)
}

// A frame written just before the drop may or may not have been processed;
// lastSeq says which, and re-sending by it delivers the frame exactly once.
func testResumeDyingFrame(t *testing.T, e *env) {
	a, b, _, _ := e.pair(t, "")
	a.Send(t, M{"type": "chat", "text": "m1", "seq": 1})
	b.Expect(t, "chat")
	a.Send(t, M{"type": "chat", "text": "m2", "seq": 2})
	a.Drop()
	a2 := e.resumeLast(t, a)
	last, ok := a2.Welcome.Int("lastSeq")
	if !ok || last < 1 || last > 2 {
		t.Fatalf("lastSeq %v, want 1 or 2", a2.Welcome["lastSeq"])
	}
	if last < 2 {
		a2.Send(t, M{"type": "chat", "text": "m2", "seq": 2})
	}
	if f := b.Expect(t, "chat"); f.Str("text") != "m2" {
		t.Fatalf("partner got %s", f)
	}
	b.ExpectNothing(t)
}

func testResumeLastSeqZero(t *testing.T, e *env) {
	a := e.client(t)
	a.Send(t, M{"type": "leave"}) // processed, but without seq
	a.Drop()
	a2 := e.resumeLast(t, a)
	if n, ok := a2.Welcome.Int("lastSeq"); !ok || n != 0 {
		t.Fatalf("lastSeq %v, want 0", a2.Welcome["lastSeq"])
	}
	if a2.Welcome.Str("state") != "idle" {
		t.Fatalf("state %q, want idle", a2.Welcome.Str("state"))
	}
	if _, ok := a2.Welcome["chat"]; ok && a2.Welcome["chat"] != nil {
		t.Fatalf("idle welcome with chat: %s", a2.Welcome)
	}
}

func testResumeWaiting(t *testing.T, e *env) {
	a := e.client(t)
	join(t, a, "text")
	a.Drop()
	a2 := e.resumeLast(t, a)
	if a2.Welcome.Str("state") != "waiting" {
		t.Fatalf("state %q, want waiting", a2.Welcome.Str("state"))
	}
	mb := joinMatched(t, e.client(t), "text")
	checkPair(t, a2.Expect(t, "matched"), mb)
}

func testResumeStateAfterResent(t *testing.T, e *env) {
	a, b, _, _ := e.pair(t, "")
	a.Drop()
	e.waitOnline(t, 1)
	b.Send(t, M{"type": "leave"})
	b.ExpectNothing(t)
	a2 := e.resumeLast(t, a)
	if a2.Welcome.Str("state") != "idle" {
		t.Fatalf("state %q, want idle (after the re-sent peer_left): %s", a2.Welcome.Str("state"), a2.Welcome)
	}
	if pl := a2.Expect(t, "peer_left"); pl.Str("reason") != "left" {
		t.Fatalf("re-sent %s, want peer_left left", pl)
	}
	join(t, a2, "")
}

// A match that happens around a drop is either written to the dead
// connection (then re-sent after the welcome, which already says chatting)
// or made after the resume; either way the client ends up in the chat the
// welcome or the matched frame names, with the seq running on.
func testResumeStateRace(t *testing.T, e *env) {
	for range 5 {
		a, b := e.client(t), e.client(t)
		join(t, a, "text")
		a.Drop()
		b.Send(t, M{"type": "join", "mode": "text"})
		a2 := e.resumeLast(t, a)
		switch st := a2.Welcome.Str("state"); st {
		case "chatting":
			chat, _ := a2.Welcome["chat"].(map[string]any)
			m := a2.Expect(t, "matched") // re-sent: it was written after seq N
			if chat == nil || chat["room"] != m.Str("room") {
				t.Fatalf("welcome chat %v, re-sent matched %s", a2.Welcome["chat"], m)
			}
			checkPair(t, m, expectMatched(t, b))
		case "waiting":
			checkPair(t, a2.Expect(t, "matched"), expectMatched(t, b))
		default:
			t.Fatalf("state %q after a drop while waiting", st)
		}
		a2.Close(1000)
		b.Expect(t, "peer_left")
		b.Close(1000)
	}
}

func testResumeTakeover(t *testing.T, e *env) {
	a, b, _, _ := e.pair(t, "")
	a2 := e.resumeLast(t, a)
	a.ExpectClose(t, 4001)
	b.ExpectNothing(t)
	if a2.Welcome.Str("state") != "chatting" {
		t.Fatalf("state %q", a2.Welcome.Str("state"))
	}
	b.Send(t, M{"type": "chat", "text": "to the new connection"})
	a2.Expect(t, "chat")
	a2.Send(t, M{"type": "chat", "text": "from it"})
	b.Expect(t, "chat")
}

func testResumeWithinGrace(t *testing.T, e *env) {
	a, b, _, _ := e.pair(t, "")
	a.Drop()
	e.waitOnline(t, 1)
	e.d.Advance(e.o.ResumeGrace - time.Second)
	b.ExpectNothing(t)
	a2 := e.resumeLast(t, a)
	e.d.Advance(2 * time.Second) // past the old grace end: nothing happens
	b.ExpectNothing(t)
	a2.Send(t, M{"type": "chat", "text": "x"})
	b.Expect(t, "chat")
}

func testResumeGraceExpiry(t *testing.T, e *env) {
	a, b, _, _ := e.pair(t, "")
	a.Drop()
	e.waitOnline(t, 1)
	e.d.Advance(e.o.ResumeGrace + time.Second)
	if pl := b.Expect(t, "peer_left"); pl.Str("reason") != "disconnected" {
		t.Fatalf("partner got %s, want peer_left disconnected", pl)
	}
	e.resumeFails(t, a.Token, a.Session)
	join(t, b, "") // b is idle
}

// At most 256 KiB is kept for a disconnected session; past that the session
// ends as if its grace period were over.
func testResumeHeldLimit(t *testing.T, e *env) {
	a, b, _, _ := e.pair(t, "")
	a.Drop()
	e.waitOnline(t, 1)
	data := strings.Repeat("z", 30000)
	var pl Frame
	for range 10 { // 300 kB
		b.Send(t, M{"type": "signal", "data": data})
	}
	pl = skipUntil(t, b, "peer_left", "error")
	if pl.Str("reason") != "disconnected" {
		t.Fatalf("partner got %s, want peer_left disconnected", pl)
	}
	e.resumeFails(t, a.Token, a.Session)
}

// Once frames are known delivered (a pong came back) the server may release
// them; a resume that asks for them then either gets them all or ends the
// session — never a silent gap.
func testResumeReleased(t *testing.T, e *env) {
	a, b, _, _ := e.pair(t, "")
	b.Send(t, M{"type": "chat", "text": "x"})
	a.Expect(t, "chat")
	k := a.Last()
	deadline := time.Now().Add(expectTimeout)
	for a.Pings() < 3 && time.Now().Before(deadline) {
		a.ExpectNothingFor(t, e.o.PingInterval)
	}
	a.Drop()
	c := e.connectAt(t, e.node(), "?"+wsclient.ResumeQuery(a.Token, "0"), DialOptions{})
	if r, _ := c.Welcome.Bool("resumed"); r {
		for c.Last() < k {
			if _, err := c.NextWithin(expectTimeout); err != nil {
				t.Fatalf("resumed with last=0 but frames 1..%d not re-sent: %v", k, err)
			}
		}
		return
	}
	if pl := b.Expect(t, "peer_left"); pl.Str("reason") != "disconnected" {
		t.Fatalf("partner got %s, want peer_left disconnected", pl)
	}
}
