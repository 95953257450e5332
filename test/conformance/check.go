package conformance

import (
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// checkCases: protocol.md "Checking a client frame" and the seq rules of
// "Client -> server".
func checkCases() []testCase {
	return []testCase{
		{name: "shape/not_json_bad_message", run: testNotJSON},
		{name: "shape/missing_or_nonstring_type_bad_message", run: testMissingType},
		{name: "shape/wrong_field_type_bad_message", run: testWrongFieldType},
		{name: "shape/invalid_value_bad_message", run: testInvalidValue},
		{name: "shape/missing_required_field_bad_message", run: testMissingRequired},
		{name: "shape/unknown_type", run: testUnknownType},
		{name: "shape/null_optional_field_is_absent", run: testNullOptional},
		{name: "shape/unknown_fields_ignored", run: testUnknownFields},
		{name: "shape/refused_frame_changes_nothing", run: testRefusedChangesNothing},
		{name: "seq/duplicate_ignored_silently", run: testSeqDuplicate},
		{name: "seq/refused_frame_counts_as_processed", run: testSeqRefusedProcessed},
		{name: "seq/rate_refused_frame_not_processed", run: testSeqRateNotProcessed, opts: smallBudget},
		{name: "order/rate_beats_everything", run: testOrderRate, opts: smallBudget},
		{name: "order/duplicate_beats_shape", run: testOrderDuplicate},
		{name: "order/shape_beats_state", run: testOrderShapeState},
		{name: "order/state_beats_limits", run: testOrderStateLimits},
		{name: "order/state_beats_overloaded", run: testOrderStateOverloaded, opts: oneWaiting},
		{name: "overloaded/queue_full_changes_nothing", run: testOverloaded, opts: oneWaiting},
		{name: "rate/rate_limited_after_burst_then_refill", run: testRateLimited, opts: smallBudget},
		{name: "rate/abuse_closes_1008_ends_session", run: testRateAbuse, opts: smallBudget},
	}
}

// smallBudget: 3 frames of burst, 1 a second, on the fake clock.
func smallBudget(o *Options) {
	o.MsgRate = 1
	o.MsgBurst = 3
}

func testNotJSON(t *testing.T, e *env) {
	c := e.client(t)
	for _, raw := range []string{`hello`, `[]`, `"join"`, `42`, `null`, `{"type":"join"`, `{"type":"join"}{"type":"join"}`, `{"type":"join"} x`, ``} {
		c.Send(t, raw)
		c.ExpectError(t, "bad_message")
	}
	join(t, c, "") // the connection is open and the session still idle
}

func testMissingType(t *testing.T, e *env) {
	c := e.client(t)
	for _, raw := range []string{`{}`, `{"mode":"video"}`, `{"type":1}`, `{"type":null}`, `{"type":["join"]}`, `{"type":true}`} {
		c.Send(t, raw)
		c.ExpectError(t, "bad_message")
	}
}

func testWrongFieldType(t *testing.T, e *env) {
	c := e.client(t)
	for _, raw := range []string{
		`{"type":"join","mode":5}`,
		`{"type":"join","interests":"music"}`,
		`{"type":"join","interests":[1,2]}`,
		`{"type":"join","interests":{"a":"b"}}`,
		`{"type":"signal","data":{},"room":5}`,
		`{"type":"chat","text":5}`,
		`{"type":"chat","text":["hi"]}`,
		`{"type":"typing","typing":"yes"}`,
		`{"type":"typing","typing":1}`,
		`{"type":"report","reason":5}`,
		`{"type":"leave","seq":"1"}`,
		`{"type":"leave","seq":1.5}`,
		`{"type":"leave","seq":true}`,
	} {
		c.Send(t, raw)
		c.ExpectError(t, "bad_message")
	}
	join(t, c, "")
}

func testInvalidValue(t *testing.T, e *env) {
	c := e.client(t)
	for _, raw := range []string{
		`{"type":"join","mode":"audio"}`,
		`{"type":"join","mode":"VIDEO"}`,
		`{"type":"join","mode":""}`,
		`{"type":"chat","text":""}`,
		`{"type":"chat","text":"  \n\t "}`,
	} {
		c.Send(t, raw)
		c.ExpectError(t, "bad_message")
	}
	join(t, c, "")
}

func testMissingRequired(t *testing.T, e *env) {
	a, b, _, _ := e.pair(t, "")
	for _, raw := range []string{
		`{"type":"signal"}`,
		`{"type":"signal","room":"x"}`,
		`{"type":"signal","data":null}`,
		`{"type":"chat"}`,
		`{"type":"chat","text":null}`,
		`{"type":"typing"}`,
		`{"type":"typing","typing":null}`,
	} {
		a.Send(t, raw)
		a.ExpectError(t, "bad_message")
	}
	b.ExpectNothing(t)
}

func testUnknownType(t *testing.T, e *env) {
	c := e.client(t)
	for _, raw := range []string{`{"type":"hello"}`, `{"type":"JOIN"}`, `{"type":""}`, `{"type":"welcome"}`, `{"type":"matched","room":"r"}`} {
		c.Send(t, raw)
		c.ExpectError(t, "unknown_type")
	}
	join(t, c, "")
}

// null in an optional field means absent.
func testNullOptional(t *testing.T, e *env) {
	a, b := e.client(t), e.client(t)
	a.Send(t, `{"type":"join","mode":null,"interests":null,"seq":null}`)
	a.Expect(t, "waiting")
	mb := joinMatched(t, b, "video")
	ma := a.Expect(t, "matched")
	if ma.Str("mode") != "video" || mb.Str("mode") != "video" {
		t.Fatalf("join with mode null: matched %s, want mode video (the default)", ma)
	}
	a.Send(t, `{"type":"signal","data":{"x":1},"room":null}`)
	if f := b.Expect(t, "signal"); !jsonEqual(f["data"], map[string]any{"x": jsonNumber("1")}) {
		t.Fatalf("signal with room null: got %s", f)
	}
	a.Send(t, `{"type":"report","reason":null}`)
	a.Expect(t, "reported")
	if b.Expect(t, "peer_left").Str("reason") != "reported" {
		t.Fatal("want peer_left reported")
	}
}

// Extensions add optional fields: a server ignores fields it does not know.
func testUnknownFields(t *testing.T, e *env) {
	a, b := e.client(t), e.client(t)
	a.Send(t, `{"type":"join","mode":"text","x-client":"bot/1.0","extra":{"a":[1,2]}}`)
	a.Expect(t, "waiting")
	b.Send(t, `{"extra":null,"type":"join","interests":[],"mode":"text"}`)
	checkPair(t, expectMatched(t, b), a.Expect(t, "matched"))
	a.Send(t, `{"type":"chat","text":"hi","lang":"en"}`)
	b.Expect(t, "chat")
}

func oneWaiting(o *Options) { o.MaxWaiting = 1 }

// overloaded is a state-stage error that comes after bad_state.
func testOrderStateOverloaded(t *testing.T, e *env) {
	a := e.client(t)
	join(t, a, "text") // the queue is full now
	a.Send(t, M{"type": "join", "mode": "video"})
	a.ExpectError(t, "bad_state")
}

// A join that the node cannot serve gets overloaded and changes nothing:
// the session stays idle and may join once there is room.
func testOverloaded(t *testing.T, e *env) {
	a, b := e.client(t), e.client(t)
	join(t, a, "text")
	b.Send(t, M{"type": "join", "mode": "video"})
	b.ExpectError(t, "overloaded")
	b.Send(t, M{"type": "next"})
	b.ExpectError(t, "overloaded")
	b.Send(t, M{"type": "chat", "text": "x"})
	b.ExpectError(t, "not_chatting") // still idle
	a.Send(t, M{"type": "leave"})
	a.ExpectNothing(t)
	join(t, b, "video")
}

// A refused frame changes nothing and relays nothing; the connection stays.
func testRefusedChangesNothing(t *testing.T, e *env) {
	a, b, ma, _ := e.pair(t, "")
	room := ma.Str("room")
	for _, raw := range []any{
		`{"type":"join","mode":"audio"}`,
		M{"type": "join"},
		M{"type": "signal", "data": M{"sdp": "x"}, "room": "r_other"},
		M{"type": "chat", "text": strings.Repeat("a", 1001)},
		M{"type": "report", "reason": strings.Repeat("a", 501)},
	} {
		a.Send(t, raw)
		a.Expect(t, "error")
	}
	b.ExpectNothing(t)
	a.Send(t, M{"type": "signal", "data": M{"ok": true}, "room": room})
	if f := b.Expect(t, "signal"); f.Str("room") != room {
		t.Fatalf("still chatting: signal %s", f)
	}
}

// A frame whose seq is not higher than the highest processed is ignored:
// no reply, no relay, no state change.
func testSeqDuplicate(t *testing.T, e *env) {
	a, b, _, _ := e.pair(t, "")
	a.Send(t, M{"type": "chat", "text": "one", "seq": 1})
	b.Expect(t, "chat")
	a.Send(t, M{"type": "chat", "text": "one again", "seq": 1})
	a.Send(t, M{"type": "leave", "seq": 1})
	a.Send(t, M{"type": "chat", "text": "zero", "seq": 0})
	a.Send(t, M{"type": "leave", "seq": -3})
	a.ExpectNothing(t)
	b.ExpectNothing(t)
	a.Send(t, M{"type": "chat", "text": "five", "seq": 5}) // gaps are allowed
	if b.Expect(t, "chat").Str("text") != "five" {
		t.Fatal("seq 5 not relayed")
	}
	a.Send(t, M{"type": "chat", "text": "four", "seq": 4})
	a.Send(t, M{"type": "chat", "text": "no seq"}) // no seq: never a duplicate
	if b.Expect(t, "chat").Str("text") != "no seq" {
		t.Fatal("frame without seq not relayed")
	}
	a.ExpectNothing(t)
}

func testSeqRefusedProcessed(t *testing.T, e *env) {
	a, b, _, _ := e.pair(t, "")
	a.Send(t, M{"type": "chat", "text": "   ", "seq": 1})
	a.ExpectError(t, "bad_message")
	a.Send(t, M{"type": "join", "seq": 2})
	a.ExpectError(t, "bad_state")
	a.Send(t, M{"type": "chat", "text": "re-sent 1", "seq": 1})
	a.Send(t, M{"type": "chat", "text": "re-sent 2", "seq": 2})
	b.ExpectNothing(t)
	a.ExpectNothing(t)
	// The resume reports them processed.
	a.Drop()
	a2 := e.resumeLast(t, a)
	if n, ok := a2.Welcome.Int("lastSeq"); !ok || n != 2 {
		t.Fatalf("lastSeq %v after two refused frames, want 2: %s", a2.Welcome["lastSeq"], a2.Welcome)
	}
}

// A frame refused for the rate budget is not processed: sent again later
// with the same seq, it is carried out.
func testSeqRateNotProcessed(t *testing.T, e *env) {
	c := e.client(t)
	for i := 1; i <= 3; i++ {
		c.Send(t, M{"type": "typing", "typing": true, "seq": i})
		c.ExpectError(t, "not_chatting")
	}
	c.Send(t, M{"type": "typing", "typing": true, "seq": 4})
	c.ExpectError(t, "rate_limited")
	e.d.Advance(time.Second)
	c.Send(t, M{"type": "typing", "typing": true, "seq": 4})
	c.ExpectError(t, "not_chatting")
}

func testOrderRate(t *testing.T, e *env) {
	c := e.client(t)
	for i := 1; i <= 3; i++ {
		c.Send(t, M{"type": "leave", "seq": i})
	}
	c.ExpectNothing(t) // leave while idle: no reply
	for _, raw := range []string{`not json`, `{"type":"leave","seq":1}`, `{"type":"nope"}`, `{"type":"chat"}`} {
		c.Send(t, raw)
		c.ExpectError(t, "rate_limited")
	}
}

func testOrderDuplicate(t *testing.T, e *env) {
	a, b, _, _ := e.pair(t, "")
	a.Send(t, M{"type": "chat", "text": "x", "seq": 7})
	b.Expect(t, "chat")
	for _, raw := range []string{
		`{"type":"chat","text":"","seq":7}`,
		`{"type":"chat","seq":3}`,
		`{"type":"nope","seq":7}`,
		`{"type":5,"seq":7}`,
		`{"seq":6}`,
		`{"type":"join","mode":"audio","seq":1}`,
		`{"type":"join","seq":7}`,
	} {
		a.Send(t, raw)
	}
	a.ExpectNothing(t)
	b.ExpectNothing(t)
}

func testOrderShapeState(t *testing.T, e *env) {
	c := e.client(t)
	c.Send(t, M{"type": "chat", "text": " "}) // idle: not_chatting would be the state error
	c.ExpectError(t, "bad_message")
	c.Send(t, M{"type": "typing", "typing": "x"})
	c.ExpectError(t, "bad_message")
	c.Send(t, M{"type": "signal"})
	c.ExpectError(t, "bad_message")
	c.Send(t, M{"type": "report", "reason": 3})
	c.ExpectError(t, "bad_message")
	a, _, _, _ := e.pair(t, "")
	a.Send(t, M{"type": "join", "mode": "audio"}) // chatting: bad_state would be the state error
	a.ExpectError(t, "bad_message")
}

func testOrderStateLimits(t *testing.T, e *env) {
	c := e.client(t)
	c.Send(t, M{"type": "chat", "text": strings.Repeat("a", 1001)})
	c.ExpectError(t, "not_chatting")
	c.Send(t, M{"type": "signal", "data": strings.Repeat("a", 40<<10)})
	c.ExpectError(t, "not_chatting")
	c.Send(t, M{"type": "report", "reason": strings.Repeat("a", 501)})
	c.ExpectError(t, "not_chatting")
}

func testRateLimited(t *testing.T, e *env) {
	a, b, _, _ := e.pair(t, "") // join took one frame of the burst of 3
	for i := range 2 {
		a.Send(t, M{"type": "chat", "text": "m" + itoa(int64(i))})
	}
	a.Send(t, M{"type": "chat", "text": "over"})
	a.ExpectError(t, "rate_limited")
	for range 2 {
		b.Expect(t, "chat")
	}
	b.ExpectNothing(t) // the refused frame was not relayed
	e.d.Advance(time.Second)
	a.Send(t, M{"type": "chat", "text": "after refill"})
	if b.Expect(t, "chat").Str("text") != "after refill" {
		t.Fatal("frame after refill not relayed")
	}
	a.Send(t, M{"type": "chat", "text": "over again"})
	a.ExpectError(t, "rate_limited")
}

// Far over budget: the connection is closed with 1008 and the session
// ends at once (partner: peer_left disconnected; the token is dead).
func testRateAbuse(t *testing.T, e *env) {
	a, b, _, _ := e.pair(t, "")
	for range 100 {
		if a.TrySend(M{"type": "typing", "typing": true}) != nil {
			break
		}
	}
	a.ExpectClose(t, websocket.ClosePolicyViolation)
	// Typing frames relayed within the budget come first; then the end.
	if pl := skipUntil(t, b, "peer_left", "typing"); pl.Str("reason") != "disconnected" {
		t.Fatalf("partner of an abusive session got %s, want peer_left disconnected", pl)
	}
	e.resumeFails(t, a.Token, a.Session)
}
