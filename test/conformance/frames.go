package conformance

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// frameCases: one test per row of the "Server -> client" and "Client ->
// server" tables.
func frameCases() []testCase {
	return []testCase{
		{name: "welcome/fields_and_online_count", run: testWelcome},
		{name: "join/idle_waiting_then_matched", run: testJoinMatched},
		{name: "join/text_mode", run: testJoinText},
		{name: "join/waiting_bad_state", run: testJoinWaiting},
		{name: "join/chatting_bad_state", run: testJoinChatting},
		{name: "matched/fields_one_initiator", run: testMatchedFields},
		{name: "matched/turn_credentials_only_with_the_match", run: testTURNOnlyMatched},
		{name: "next/idle_enters_queue_with_defaults", run: testNextIdleDefaults},
		{name: "next/idle_uses_last_join_prefs", run: testNextIdleLastPrefs},
		{name: "next/waiting_no_reply_nothing_changes", run: testNextWaiting},
		{name: "next/chatting_partner_peer_left_next_requeued_with_prefs", run: testNextChatting},
		{name: "leave/idle_no_reply", run: testLeaveIdle},
		{name: "leave/waiting_leaves_queue", run: testLeaveWaiting},
		{name: "leave/chatting_partner_peer_left_left", run: testLeaveChatting},
		{name: "signal/relayed_same_json_value_with_room", run: testSignalRelay},
		{name: "signal/any_json_value_relayed", run: testSignalValues},
		{name: "signal/not_chatting", run: testSignalNotChatting},
		{name: "signal/wrong_or_empty_room_not_chatting", run: testSignalWrongRoom},
		{name: "signal/old_room_never_reaches_new_partner", run: testSignalOldRoom},
		{name: "signal/data_over_32KiB_too_long", run: testSignalTooLong},
		{name: "signal/missing_data_bad_message", run: testSignalMissingData},
		{name: "chat/trimmed_and_relayed", run: testChatRelay},
		{name: "chat/empty_bad_message_before_state", run: testChatEmpty},
		{name: "chat/over_1000_code_points_too_long", run: testChatTooLong},
		{name: "chat/not_chatting", run: testChatNotChatting},
		{name: "chat/text_hygiene_nfc_controls_removed", run: testChatHygiene},
		{name: "typing/relayed", run: testTypingRelay},
		{name: "typing/not_chatting", run: testTypingNotChatting},
		{name: "ping/pong_in_every_state", run: testPingEveryState},
		{name: "ping/ack_covers_earlier_frames", run: testPingAck},
		{name: "watch/counts_pushed_to_watchers_only", run: testWatchCounts},
		{name: "watch/bad_shape", run: testWatchShape},
		{name: "report/chatting_ends_chat_pair_never_matched_again", run: testReportChatting},
		{name: "report/idle_within_60s_reports_last_partner", run: testReportIdleRecent},
		{name: "report/waiting_within_60s_state_unchanged", run: testReportWaitingRecent},
		{name: "report/after_60s_not_chatting", run: testReportTooLate},
		{name: "report/never_chatted_not_chatting", run: testReportNever},
		{name: "report/reason_over_500_too_long", run: testReportReasonTooLong},
		{name: "relay/order_preserved", run: testRelayOrder},
	}
}

func testWelcome(t *testing.T, e *env) {
	c1 := e.client(t)
	w := c1.Welcome
	for _, k := range []string{"session", "resumeToken"} {
		if s, ok := w[k].(string); !ok || s == "" {
			t.Errorf("welcome.%s = %v, want a non-empty string", k, w[k])
		}
	}
	if r, ok := w.Bool("resumed"); !ok || r {
		t.Errorf("welcome.resumed = %v, want false", w["resumed"])
	}
	ice, ok := w["iceServers"].([]any)
	if !ok {
		t.Fatalf("welcome.iceServers = %v, want an array", w["iceServers"])
	}
	for _, s := range ice {
		checkICEServer(t, s)
	}
	// One node counts exactly; several may publish their counts with a
	// delay, so there the count is only required to get there (waitOnline).
	exact := e.d.Nodes() == 1
	if n, ok := w.Int("online"); !ok || n < 1 || (exact && n != 1) {
		t.Errorf("welcome.online = %v with one connection, want 1", w["online"])
	}
	c2 := e.client(t)
	if n, _ := c2.Welcome.Int("online"); n < 1 || (exact && n != 2) {
		t.Errorf("second welcome.online = %v, want 2", c2.Welcome["online"])
	}
	e.waitOnline(t, 2)
	if c2.Session == c1.Session || c2.Token == c1.Token {
		t.Errorf("two connections share a session or token")
	}
	// online counts live connections: a closed one and a dropped one leave it.
	c1.Close(1000)
	e.waitOnline(t, 1)
	c2.Drop()
	e.waitOnline(t, 0)
}

func checkICEServer(t *testing.T, v any) {
	t.Helper()
	s, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("iceServers entry %v is not an object", v)
	}
	switch u := s["urls"].(type) {
	case string:
	case []any:
		if len(u) == 0 {
			t.Errorf("iceServers entry %v: empty urls", s)
		}
		for _, x := range u {
			if _, ok := x.(string); !ok {
				t.Errorf("iceServers entry %v: urls holds a non-string", s)
			}
		}
	default:
		t.Errorf("iceServers entry %v: urls must be a string or an array of strings", s)
	}
	for _, k := range []string{"username", "credential"} {
		if x, ok := s[k]; ok {
			if _, ok := x.(string); !ok {
				t.Errorf("iceServers entry %v: %s is not a string", s, k)
			}
		}
	}
}

// testTURNOnlyMatched: protocol 1.1. No welcome carries a credential;
// matched carries iceServers, and when welcome.turn says a relay is offered,
// a TURN entry with a credential naming the session.
func testTURNOnlyMatched(t *testing.T, e *env) {
	a, b := e.client(t), e.client(t)
	for _, c := range []*Client{a, b} {
		ice, _ := c.Welcome["iceServers"].([]any)
		for _, s := range ice {
			if m, ok := s.(map[string]any); ok && (m["username"] != nil || m["credential"] != nil) {
				t.Fatalf("welcome carries a credential: %s", c.Welcome)
			}
		}
	}
	join(t, a, "video")
	mb := joinMatched(t, b, "video")
	ma := a.Expect(t, "matched")
	for _, x := range []struct {
		c *Client
		m Frame
	}{{a, ma}, {b, mb}} {
		ice, ok := x.m["iceServers"].([]any)
		if !ok {
			t.Fatalf("matched.iceServers = %v, want an array", x.m["iceServers"])
		}
		withCredential := false
		for _, s := range ice {
			checkICEServer(t, s)
			m, _ := s.(map[string]any)
			if u, ok := m["username"].(string); ok {
				withCredential = true
				if !strings.HasSuffix(u, ":"+x.c.Session) || m["credential"] == "" {
					t.Errorf("matched TURN entry %v: want a credential for session %s", m, x.c.Session)
				}
			}
		}
		if turn, _ := x.c.Welcome.Bool("turn"); turn && !withCredential {
			t.Errorf("welcome.turn but matched has no TURN credential: %s", x.m)
		}
	}
}

func testJoinMatched(t *testing.T, e *env) {
	a, b := e.client(t), e.client(t)
	a.Send(t, M{"type": "join"})
	a.Expect(t, "waiting")
	a.ExpectNothing(t) // alone: no match
	mb := joinMatched(t, b, "")
	ma := a.Expect(t, "matched")
	checkPair(t, ma, mb)
	if ma.Str("mode") != "video" {
		t.Fatalf("join without mode: matched mode %q, want video", ma.Str("mode"))
	}
}

func testJoinText(t *testing.T, e *env) {
	a, b := e.client(t), e.client(t)
	join(t, a, "text")
	mb := joinMatched(t, b, "text")
	ma := a.Expect(t, "matched")
	checkPair(t, ma, mb)
	if ma.Str("mode") != "text" {
		t.Fatalf("mode %q, want text", ma.Str("mode"))
	}
}

func testJoinWaiting(t *testing.T, e *env) {
	a, b := e.client(t), e.client(t)
	join(t, a, "text")
	a.Send(t, M{"type": "join", "mode": "video"})
	a.ExpectError(t, "bad_state")
	// Nothing changed: a still waits in text mode.
	join(t, b, "video")
	a.ExpectNothing(t)
	c := e.client(t)
	joinMatched(t, c, "text")
	if a.Expect(t, "matched").Str("mode") != "text" {
		t.Fatal("a's queue entry changed")
	}
}

func testJoinChatting(t *testing.T, e *env) {
	a, b, _, _ := e.pair(t, "")
	a.Send(t, M{"type": "join"})
	a.ExpectError(t, "bad_state")
	b.ExpectNothing(t)
	a.Send(t, M{"type": "chat", "text": "still chatting"})
	b.Expect(t, "chat")
}

func testMatchedFields(t *testing.T, e *env) {
	a, b := e.client(t), e.client(t)
	join(t, a, "video", "Music", "go")
	mb := joinMatched(t, b, "video", "go", "chess")
	ma := a.Expect(t, "matched")
	checkPair(t, ma, mb)
	if got := strs(ma["commonInterests"]); !sameSet(got, []string{"go"}) {
		t.Fatalf("commonInterests %v, want [go]", got)
	}
	if ma.Str("mode") != "video" {
		t.Fatalf("mode %q", ma.Str("mode"))
	}
}

func testNextIdleDefaults(t *testing.T, e *env) {
	a, b := e.client(t), e.client(t)
	a.Send(t, M{"type": "next"})
	a.Expect(t, "waiting")
	join(t, b, "text") // a waits in the default mode, video
	mc := joinMatched(t, e.client(t), "video")
	ma := a.Expect(t, "matched")
	checkPair(t, ma, mc)
	b.ExpectNothing(t)
}

func testNextIdleLastPrefs(t *testing.T, e *env) {
	a := e.client(t)
	join(t, a, "text", "x")
	a.Send(t, M{"type": "leave"})
	a.ExpectNothing(t)
	a.Send(t, M{"type": "next"})
	a.Expect(t, "waiting")
	mc := joinMatched(t, e.client(t), "text", "x")
	ma := a.Expect(t, "matched")
	checkPair(t, ma, mc)
	if !sameSet(strs(ma["commonInterests"]), []string{"x"}) || ma.Str("mode") != "text" {
		t.Fatalf("next did not reuse the last join's prefs: %s", ma)
	}
}

func testNextWaiting(t *testing.T, e *env) {
	a, b := e.client(t), e.client(t)
	join(t, a, "text", "x")
	a.Send(t, M{"type": "next"})
	a.ExpectNothing(t)
	mb := joinMatched(t, b, "text", "x")
	ma := a.Expect(t, "matched")
	checkPair(t, ma, mb)
	if !sameSet(strs(ma["commonInterests"]), []string{"x"}) {
		t.Fatalf("a's prefs changed by next while waiting: %s", ma)
	}
}

func testNextChatting(t *testing.T, e *env) {
	a, b := e.client(t), e.client(t)
	join(t, a, "text", "x")
	joinMatched(t, b, "text", "x")
	a.Expect(t, "matched")
	a.Send(t, M{"type": "next"})
	if pl := b.Expect(t, "peer_left"); pl.Str("reason") != "next" {
		t.Fatalf("partner got %s, want peer_left next", pl)
	}
	a.Expect(t, "waiting")
	c := e.client(t)
	mc := joinMatched(t, c, "text", "x")
	ma := a.Expect(t, "matched")
	checkPair(t, ma, mc)
	if ma.Str("mode") != "text" || !sameSet(strs(ma["commonInterests"]), []string{"x"}) {
		t.Fatalf("next requeued without the last join's prefs: %s", ma)
	}
	b.ExpectNothing(t) // b is idle
	join(t, b, "video")
}

func testLeaveIdle(t *testing.T, e *env) {
	a := e.client(t)
	a.Send(t, M{"type": "leave"})
	a.ExpectNothing(t)
	join(t, a, "")
}

func testLeaveWaiting(t *testing.T, e *env) {
	a, b := e.client(t), e.client(t)
	join(t, a, "")
	a.Send(t, M{"type": "leave"})
	a.ExpectNothing(t)
	join(t, b, "") // a left the queue: b waits alone
	a.ExpectNothing(t)
	join(t, a, "") // a is idle again; now both match
	b.Expect(t, "matched")
	a.Expect(t, "matched")
}

func testLeaveChatting(t *testing.T, e *env) {
	a, b, _, _ := e.pair(t, "")
	a.Send(t, M{"type": "leave"})
	if pl := b.Expect(t, "peer_left"); pl.Str("reason") != "left" {
		t.Fatalf("partner got %s, want peer_left left", pl)
	}
	a.ExpectNothing(t)
	b.Send(t, M{"type": "chat", "text": "anyone?"})
	b.ExpectError(t, "not_chatting")
	join(t, a, "") // both idle
	joinMatched(t, b, "")
}

func testSignalRelay(t *testing.T, e *env) {
	a, b, ma, mb := e.pair(t, "")
	room := ma.Str("room")
	data := `{ "sdp" : { "type" : "offer", "sdp" : "v=0\r\no=- 46 2 IN IP4 127.0.0.1\r\n" },
	  "big": 12345678901234567890123, "f": 1.50, "neg": -0.0, "e": 1e400,
	  "s": "caf\u00e9 \ud83d\ude00 \"q\" \\", "nested": [1, [2, {"x": null}], true] }`
	a.Send(t, `{"type":"signal","room":"`+room+`","data":`+data+`}`)
	f := b.Expect(t, "signal")
	if f.Str("room") != mb.Str("room") {
		t.Fatalf("signal room %q, want %q", f.Str("room"), room)
	}
	if !jsonEqual(f["data"], decode(t, data)) {
		t.Fatalf("signal data changed:\n got %s\nwant %s", canon(f["data"]), canon(decode(t, data)))
	}
	// Without room, too; and in the other direction.
	b.Send(t, `{"type":"signal","data":{"candidate":{"candidate":"candidate:1 1 udp 1 127.0.0.1 5000 typ host","sdpMid":"0"}}}`)
	g := a.Expect(t, "signal")
	if g.Str("room") != room {
		t.Fatalf("signal room %q, want %q", g.Str("room"), room)
	}
}

func decode(t testing.TB, s string) any {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatalf("decode %s: %v", s, err)
	}
	return v
}

func testSignalValues(t *testing.T, e *env) {
	a, b, _, _ := e.pair(t, "")
	for _, data := range []string{`{"candidate":null}`, `0`, `"x"`, `[]`, `{}`, `false`, `[1,"two",{"3":[]}]`} {
		a.Send(t, `{"type":"signal","data":`+data+`}`)
		if f := b.Expect(t, "signal"); !jsonEqual(f["data"], decode(t, data)) {
			t.Fatalf("data %s relayed as %s", data, canon(f["data"]))
		}
	}
}

func testSignalNotChatting(t *testing.T, e *env) {
	a := e.client(t)
	a.Send(t, M{"type": "signal", "data": M{"sdp": "x"}})
	a.ExpectError(t, "not_chatting")
	join(t, a, "")
	a.Send(t, M{"type": "signal", "data": M{"sdp": "x"}})
	a.ExpectError(t, "not_chatting")
}

func testSignalWrongRoom(t *testing.T, e *env) {
	a, b, _, _ := e.pair(t, "")
	for _, room := range []string{"r_not_yours", ""} {
		a.Send(t, M{"type": "signal", "data": M{"candidate": nil}, "room": room})
		a.ExpectError(t, "not_chatting")
	}
	b.ExpectNothing(t)
}

func testSignalOldRoom(t *testing.T, e *env) {
	a, b, ma, _ := e.pair(t, "")
	old := ma.Str("room")
	b.Send(t, M{"type": "leave"})
	a.Expect(t, "peer_left")
	join(t, a, "")
	c := e.client(t)
	mc := joinMatched(t, c, "")
	a.Expect(t, "matched")
	if mc.Str("room") == old {
		t.Fatal("a new chat reused the old room id")
	}
	a.Send(t, M{"type": "signal", "data": M{"candidate": "late"}, "room": old})
	a.ExpectError(t, "not_chatting")
	c.ExpectNothing(t)
	b.ExpectNothing(t)
}

func testSignalTooLong(t *testing.T, e *env) {
	a, b, _, _ := e.pair(t, "")
	// data is a JSON string; its raw size is its length plus two quotes.
	at := strings.Repeat("d", 32<<10-2)
	a.Send(t, M{"type": "signal", "data": at})
	if f := b.Expect(t, "signal"); f.Str("data") != at {
		t.Fatal("32 KiB of data not relayed intact")
	}
	a.Send(t, M{"type": "signal", "data": at + "d"})
	a.ExpectError(t, "too_long")
	b.ExpectNothing(t)
}

func testSignalMissingData(t *testing.T, e *env) {
	a, b, ma, _ := e.pair(t, "")
	a.Send(t, M{"type": "signal", "room": ma.Str("room")})
	a.ExpectError(t, "bad_message")
	b.ExpectNothing(t)
}

func testChatRelay(t *testing.T, e *env) {
	a, b, _, _ := e.pair(t, "")
	a.Send(t, M{"type": "chat", "text": " \t hello  world \r\n "})
	if got := b.Expect(t, "chat").Str("text"); got != "hello  world" {
		t.Fatalf("chat text %q, want %q", got, "hello  world")
	}
	b.Send(t, M{"type": "chat", "text": "héllo 😀 \"quoted\" \\ <b>"})
	if got := a.Expect(t, "chat").Str("text"); got != "héllo 😀 \"quoted\" \\ <b>" {
		t.Fatalf("chat text %q", got)
	}
}

func testChatEmpty(t *testing.T, e *env) {
	c := e.client(t)
	c.Send(t, M{"type": "chat", "text": "  "})
	c.ExpectError(t, "bad_message")
	a, b, _, _ := e.pair(t, "")
	a.Send(t, M{"type": "chat", "text": "\n"})
	a.ExpectError(t, "bad_message")
	b.ExpectNothing(t)
}

func testChatTooLong(t *testing.T, e *env) {
	a, b, _, _ := e.pair(t, "")
	ok := strings.Repeat("é", 999) + "😀" // 1000 code points
	a.Send(t, M{"type": "chat", "text": "   " + ok + "\n"})
	if b.Expect(t, "chat").Str("text") != ok {
		t.Fatal("1000 code points not relayed intact")
	}
	a.Send(t, M{"type": "chat", "text": ok + "x"})
	a.ExpectError(t, "too_long")
	b.ExpectNothing(t)
}

// Protocol 1.1 "Text hygiene": control and bidirectional characters are
// removed (newline and tab kept), the text composed to NFC, before trimming
// and relaying; nothing but controls is an empty chat.
func testChatHygiene(t *testing.T, e *env) {
	a, b, _, _ := e.pair(t, "")
	a.Send(t, M{"type": "chat", "text": "\u202e\u0000 cafe\u0301\r\n\tfdp.exe\u001b \u2066"})
	if got := b.Expect(t, "chat").Str("text"); got != "café\n\tfdp.exe" {
		t.Fatalf("chat text %q, want %q", got, "café\n\tfdp.exe")
	}
	a.Send(t, M{"type": "chat", "text": "\u0000\u202e \u0007\u2069"})
	a.ExpectError(t, "bad_message")
	b.ExpectNothing(t)
}

func testChatNotChatting(t *testing.T, e *env) {
	a := e.client(t)
	a.Send(t, M{"type": "chat", "text": "hi"})
	a.ExpectError(t, "not_chatting")
	join(t, a, "")
	a.Send(t, M{"type": "chat", "text": "hi"})
	a.ExpectError(t, "not_chatting")
}

func testTypingRelay(t *testing.T, e *env) {
	a, b, _, _ := e.pair(t, "")
	for _, v := range []bool{true, false} {
		a.Send(t, M{"type": "typing", "typing": v})
		if got, ok := b.Expect(t, "typing").Bool("typing"); !ok || got != v {
			t.Fatalf("typing %v relayed as %v", v, got)
		}
	}
	a.ExpectNothing(t)
}

func testTypingNotChatting(t *testing.T, e *env) {
	a := e.client(t)
	a.Send(t, M{"type": "typing", "typing": true})
	a.ExpectError(t, "not_chatting")
	join(t, a, "")
	a.Send(t, M{"type": "typing", "typing": false})
	a.ExpectError(t, "not_chatting")
}

// The heartbeat extension: ping gets pong at once in every state, nothing
// reaches the partner, and pong.ack is the highest client seq processed (0
// before any).
func testPingEveryState(t *testing.T, e *env) {
	a := e.client(t)
	a.Send(t, M{"type": "ping"})
	if ack, ok := a.Expect(t, "pong").Int("ack"); !ok || ack != 0 {
		t.Fatalf("pong before any seq: ack %d (present %v), want 0", ack, ok)
	}
	a.Send(t, M{"type": "ping", "seq": 1})
	if ack, _ := a.Expect(t, "pong").Int("ack"); ack != 1 {
		t.Fatalf("pong ack %d, want 1 (the ping's own seq)", ack)
	}
	join(t, a, "")
	a.Send(t, M{"type": "ping"})
	a.Expect(t, "pong")

	b := e.client(t)
	join(t, b, "")
	a.Expect(t, "matched")
	b.Expect(t, "matched")
	b.Send(t, M{"type": "ping"})
	b.Expect(t, "pong")
	a.ExpectNothing(t)
}

// A pong acknowledges every frame read before its ping: a chat line sent
// with seq 7 right before a ping without seq is covered by ack 7.
func testPingAck(t *testing.T, e *env) {
	a, b, _, _ := e.pair(t, "")
	a.Send(t, M{"type": "chat", "text": "are you there?", "seq": 7})
	a.Send(t, M{"type": "ping"})
	if ack, _ := a.Expect(t, "pong").Int("ack"); ack != 7 {
		t.Fatalf("pong ack %d, want 7", ack)
	}
	b.Expect(t, "chat")
	// A duplicate ping with an old seq is ignored like any duplicate.
	a.Send(t, M{"type": "ping", "seq": 7})
	a.ExpectNothing(t)
}

// countsOf decodes a counts frame.
func countsOf(t *testing.T, f Frame) (online, video, text int64) {
	t.Helper()
	var c struct {
		Online  *int64 `json:"online"`
		Waiting *struct {
			Video *int64 `json:"video"`
			Text  *int64 `json:"text"`
		} `json:"waiting"`
	}
	if err := f.Decode(&c); err != nil || c.Online == nil || c.Waiting == nil || c.Waiting.Video == nil || c.Waiting.Text == nil {
		t.Fatalf("counts frame %s: want online and waiting.video/.text (%v)", f, err)
	}
	return *c.Online, *c.Waiting.Video, *c.Waiting.Text
}

// The counts extension: watch {counts: true} answers counts at once (the
// watcher is online itself), then pushes a counts frame when the numbers
// change (throttled to one a second); nobody else gets them, and watch
// {counts: false} stops them.
func testWatchCounts(t *testing.T, e *env) {
	a := e.client(t)
	a.Send(t, M{"type": "watch", "counts": true})
	online, video, text := countsOf(t, a.Expect(t, "counts"))
	if online < 1 || video != 0 || text != 0 {
		t.Fatalf("first counts: online %d, waiting video %d text %d; want online >= 1 and nobody waiting", online, video, text)
	}
	b := e.client(t)
	join(t, b, "text")
	// Pushed within two ticks of the change (more on several nodes, whose
	// counts travel with the heartbeat).
	deadline := time.Now().Add(5 * time.Second)
	for text != 1 || online < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("no counts with one text session waiting within 5 s (last: online %d, video %d, text %d)", online, video, text)
		}
		f, err := a.NextWithin(time.Until(deadline))
		if err != nil {
			t.Fatalf("waiting for counts: %v", err)
		}
		if f.Type() != "counts" {
			t.Fatalf("got %s, want counts", f)
		}
		online, video, text = countsOf(t, f)
	}
	b.ExpectNothingFor(t, 1500*time.Millisecond) // b never asked
	a.Send(t, M{"type": "watch", "counts": false})
	a.Send(t, M{"type": "ping"}) // the pong shows the watch was handled
	for {
		// A push of a change that was on its way (another node's count
		// arrives with its heartbeat) may come before the pong.
		f, err := a.NextWithin(2 * time.Second)
		if err != nil {
			t.Fatalf("waiting for pong: %v", err)
		}
		if f.Type() == "pong" {
			break
		}
		if f.Type() != "counts" {
			t.Fatalf("got %s, want counts or pong", f)
		}
	}
	b.Send(t, M{"type": "leave"})
	a.ExpectNothingFor(t, 2500*time.Millisecond)
}

func testWatchShape(t *testing.T, e *env) {
	a := e.client(t)
	a.Send(t, M{"type": "watch"})
	a.ExpectError(t, "bad_message")
	a.Send(t, M{"type": "watch", "counts": "yes"})
	a.ExpectError(t, "bad_message")
}

// Report while chatting: ack, the partner's peer_left reported, both idle,
// and the pair is never matched again — even when they are the only two in
// the queue, for at least 24 hours.
func testReportChatting(t *testing.T, e *env) {
	a, b, _, _ := e.pair(t, "")
	a.Send(t, M{"type": "report", "reason": "spam"})
	a.Expect(t, "reported")
	if pl := b.Expect(t, "peer_left"); pl.Str("reason") != "reported" {
		t.Fatalf("partner got %s, want peer_left reported", pl)
	}
	join(t, a, "")
	join(t, b, "")
	a.ExpectNothing(t)
	b.ExpectNothing(t)
	e.d.Advance(e.o.InterestTimeout + time.Second)
	e.d.Advance(23 * time.Hour)
	a.ExpectNothing(t)
	b.ExpectNothing(t)
	c := e.client(t) // each still matches others
	joinMatched(t, c, "")
	if a.Expect(t, "matched") == nil {
		t.Fatal("a not matched")
	}
}

func testReportIdleRecent(t *testing.T, e *env) {
	a, b, _, _ := e.pair(t, "")
	b.Send(t, M{"type": "leave"})
	a.Expect(t, "peer_left")
	e.d.Advance(59 * time.Second)
	a.Send(t, M{"type": "report"})
	a.Expect(t, "reported")
	b.ExpectNothing(t)
	// State unchanged (idle), and the pair never meets again.
	join(t, a, "")
	join(t, b, "")
	a.ExpectNothing(t)
	b.ExpectNothing(t)
}

func testReportWaitingRecent(t *testing.T, e *env) {
	a, b, _, _ := e.pair(t, "")
	b.Send(t, M{"type": "leave"})
	a.Expect(t, "peer_left")
	join(t, a, "text")
	a.Send(t, M{"type": "report", "reason": "rude"})
	a.Expect(t, "reported")
	b.ExpectNothing(t)
	// Still waiting, in text mode.
	mc := joinMatched(t, e.client(t), "text")
	checkPair(t, a.Expect(t, "matched"), mc)
}

func testReportTooLate(t *testing.T, e *env) {
	a, b, _, _ := e.pair(t, "")
	b.Send(t, M{"type": "leave"})
	a.Expect(t, "peer_left")
	e.d.Advance(61 * time.Second)
	a.Send(t, M{"type": "report"})
	a.ExpectError(t, "not_chatting")
	b.ExpectNothing(t)
	// Not recorded as a block: they may meet again.
	join(t, a, "")
	joinMatched(t, b, "")
}

func testReportNever(t *testing.T, e *env) {
	a := e.client(t)
	a.Send(t, M{"type": "report"})
	a.ExpectError(t, "not_chatting")
	join(t, a, "")
	a.Send(t, M{"type": "report"})
	a.ExpectError(t, "not_chatting")
}

func testReportReasonTooLong(t *testing.T, e *env) {
	a, b, _, _ := e.pair(t, "")
	a.Send(t, M{"type": "report", "reason": strings.Repeat("é", 501)})
	a.ExpectError(t, "too_long")
	b.ExpectNothing(t)
	a.Send(t, M{"type": "chat", "text": "still chatting"})
	b.Expect(t, "chat")
	a.Send(t, M{"type": "report", "reason": strings.Repeat("é", 500)})
	a.Expect(t, "reported")
	b.Expect(t, "peer_left")
}

// Relayed messages arrive in the order they were sent, whatever their type.
func testRelayOrder(t *testing.T, e *env) {
	a, b, _, _ := e.pair(t, "")
	const n = 40
	for i := range n {
		switch i % 3 {
		case 0:
			a.Send(t, M{"type": "chat", "text": itoa(int64(i))})
		case 1:
			a.Send(t, M{"type": "signal", "data": i})
		default:
			a.Send(t, M{"type": "typing", "typing": i%2 == 0})
		}
	}
	for i := range n {
		want := [...]string{"chat", "signal", "typing"}[i%3]
		f := b.Expect(t, want)
		switch want {
		case "chat":
			if f.Str("text") != itoa(int64(i)) {
				t.Fatalf("frame %d: %s", i, f)
			}
		case "signal":
			if v, _ := f.Int("data"); v != int64(i) {
				t.Fatalf("frame %d: %s", i, f)
			}
		}
	}
}
