package conformance

import (
	"strings"
	"testing"
	"time"
)

// matchingCases: protocol.md "Matching rules" 1-6 (rule 7 is the random
// concurrency test and every test's invariant check).
func matchingCases() []testCase {
	return []testCase{
		{name: "rule1/only_same_mode_matched", run: testRule1Mode},
		{name: "rule2/interests_normalised", run: testRule2Normalise},
		{name: "rule2/interests_text_hygiene", run: testRule2Hygiene},
		{name: "rule2/first_10_kept", run: testRule2First10},
		{name: "rule2/over_32_code_points_dropped", run: testRule2Long},
		{name: "rule3/shared_interest_matched", run: testRule3Shared},
		{name: "rule3/no_shared_interest_waits_for_timeout", run: testRule3Timeout},
		{name: "rule3/without_interests_accepts_anyone_at_once", run: testRule3NoInterests},
		{name: "rule4/longest_waiting_wins", run: testRule4Longest},
		{name: "rule5/just_parted_rematched_only_without_alternative", run: testRule5Recent},
		{name: "rule5/just_parted_rematched_when_alone", run: testRule5Alone},
		{name: "rule5/reported_pair_never_matched", run: testRule5Reported},
		{name: "rule6/disconnected_session_not_matched", run: testRule6NotMatched},
		{name: "rule6/resume_keeps_queue_place", run: testRule6Place},
		{name: "rule6/resume_keeps_interest_clock", run: testRule6Clock},
	}
}

func testRule1Mode(t *testing.T, e *env) {
	v, x := e.client(t), e.client(t)
	join(t, v, "video")
	join(t, x, "text")
	v.ExpectNothing(t)
	x.ExpectNothing(t)
	e.d.Advance(e.o.InterestTimeout + time.Second)
	v.ExpectNothing(t)
	mt := joinMatched(t, e.client(t), "text")
	mx := x.Expect(t, "matched")
	checkPair(t, mx, mt)
	if mx.Str("mode") != "text" {
		t.Fatalf("mode %q", mx.Str("mode"))
	}
	mv := joinMatched(t, e.client(t), "video")
	checkPair(t, v.Expect(t, "matched"), mv)
}

func testRule2Normalise(t *testing.T, e *env) {
	a, b := e.client(t), e.client(t)
	join(t, a, "text", "  Music ", "MUSIC", "", "   ", "Go", "music")
	mb := joinMatched(t, b, "text", "music", "gO ")
	ma := a.Expect(t, "matched")
	checkPair(t, ma, mb)
	if got := strs(ma["commonInterests"]); !sameSet(got, []string{"music", "go"}) {
		t.Fatalf("commonInterests %q, want music and go (trimmed, lower-case, once)", got)
	}
}

// Interests get text hygiene (protocol 1.1) before rule 2: controls and
// bidirectional characters removed, NFC, so spellings that look alike are
// one interest.
func testRule2Hygiene(t *testing.T, e *env) {
	a, b := e.client(t), e.client(t)
	join(t, a, "text", "Cafe\u0301", "\u202ego\u0000", "\u0007")
	mb := joinMatched(t, b, "text", "café", "go")
	ma := a.Expect(t, "matched")
	checkPair(t, ma, mb)
	if got := strs(ma["commonInterests"]); !sameSet(got, []string{"café", "go"}) {
		t.Fatalf("commonInterests %q, want café and go", got)
	}
}

// Only the first 10 (after dropping empty ones and duplicates) count.
func testRule2First10(t *testing.T, e *env) {
	a, b := e.client(t), e.client(t)
	list := []string{"", "i0", "I0"}
	for i := range 11 {
		list = append(list, "i"+itoa(int64(i)))
	}
	join(t, a, "text", list...) // keeps i0..i9
	join(t, b, "text", "i10")
	a.ExpectNothing(t)
	b.ExpectNothing(t)
	c := e.client(t)
	mc := joinMatched(t, c, "text", "i9")
	checkPair(t, a.Expect(t, "matched"), mc)
	if got := strs(mc["commonInterests"]); !sameSet(got, []string{"i9"}) {
		t.Fatalf("commonInterests %q, want [i9]", got)
	}
}

func testRule2Long(t *testing.T, e *env) {
	a, b := e.client(t), e.client(t)
	ok := strings.Repeat("é", 32)
	long := strings.Repeat("x", 33)
	join(t, a, "text", long, ok)
	mb := joinMatched(t, b, "text", ok, long)
	ma := a.Expect(t, "matched")
	checkPair(t, ma, mb)
	if got := strs(ma["commonInterests"]); !sameSet(got, []string{ok}) {
		t.Fatalf("commonInterests %q, want only the 32-code-point one", got)
	}
	// An interest list that is all dropped is no interests: accepts anyone.
	c, d := e.client(t), e.client(t)
	join(t, c, "video", long, "  ")
	md := joinMatched(t, d, "video")
	checkPair(t, c.Expect(t, "matched"), md)
}

func testRule3Shared(t *testing.T, e *env) {
	a, b, c := e.client(t), e.client(t), e.client(t)
	join(t, a, "text", "cats")
	join(t, b, "text", "dogs")
	a.ExpectNothing(t)
	mc := joinMatched(t, c, "text", "birds", "dogs")
	mb := b.Expect(t, "matched")
	checkPair(t, mb, mc)
	if got := strs(mb["commonInterests"]); !sameSet(got, []string{"dogs"}) {
		t.Fatalf("commonInterests %q", got)
	}
	a.ExpectNothing(t)
}

// A session with interests accepts anyone of its mode only after the
// interest timeout; two sessions match only if each accepts the other.
func testRule3Timeout(t *testing.T, e *env) {
	a, b := e.client(t), e.client(t)
	join(t, a, "text", "cats")
	join(t, b, "text") // b accepts a, a does not accept b yet
	a.ExpectNothing(t)
	e.d.Advance(e.o.InterestTimeout - 100*time.Millisecond)
	a.ExpectNothing(t)
	b.ExpectNothing(t)
	e.d.Advance(200 * time.Millisecond)
	ma := a.Expect(t, "matched")
	mb := b.Expect(t, "matched")
	checkPair(t, ma, mb)
	if got := strs(ma["commonInterests"]); len(got) != 0 {
		t.Fatalf("commonInterests %q, want empty", got)
	}
	// Two sessions with disjoint interests match once both timed out.
	c, d := e.client(t), e.client(t)
	join(t, c, "video", "x")
	e.d.Advance(e.o.InterestTimeout / 2)
	join(t, d, "video", "y")
	e.d.Advance(e.o.InterestTimeout/2 + 100*time.Millisecond) // c timed out, d not
	c.ExpectNothing(t)
	d.ExpectNothing(t)
	e.d.Advance(e.o.InterestTimeout / 2)
	checkPair(t, c.Expect(t, "matched"), d.Expect(t, "matched"))
}

func testRule3NoInterests(t *testing.T, e *env) {
	a, b := e.client(t), e.client(t)
	join(t, a, "video")
	mb := joinMatched(t, b, "video")
	checkPair(t, a.Expect(t, "matched"), mb)
	// A session without interests accepts one with interests at once, but
	// not the other way round: they match when the latter times out.
	c, d := e.client(t), e.client(t)
	join(t, c, "video")
	join(t, d, "video", "anything")
	c.ExpectNothing(t)
	e.d.Advance(e.o.InterestTimeout + 100*time.Millisecond)
	checkPair(t, c.Expect(t, "matched"), d.Expect(t, "matched"))
}

func testRule4Longest(t *testing.T, e *env) {
	a, b, c := e.client(t), e.client(t), e.client(t)
	join(t, a, "text", "a")
	join(t, b, "text", "b")
	mc := joinMatched(t, c, "text", "b", "a")
	ma := a.Expect(t, "matched")
	checkPair(t, ma, mc)
	if got := strs(ma["commonInterests"]); !sameSet(got, []string{"a"}) {
		t.Fatalf("commonInterests %q", got)
	}
	b.ExpectNothing(t)
	// Without interests as well: the oldest of three waiting wins.
	x, y, z := e.client(t), e.client(t), e.client(t)
	join(t, x, "video", "p")
	join(t, y, "video", "q")
	join(t, z, "video", "r")
	e.d.Advance(e.o.InterestTimeout + time.Second) // x, y, z accept anyone; they match each other
	f1, f2 := x.Expect(t, "matched"), y.Expect(t, "matched")
	checkPair(t, f1, f2)
	z.ExpectNothing(t)
}

// Two sessions that just parted are matched with each other only if
// neither has another acceptable partner waiting.
func testRule5Recent(t *testing.T, e *env) {
	a, b := e.client(t), e.client(t)
	join(t, a, "text", "a")
	joinMatched(t, b, "text", "a", "c")
	a.Expect(t, "matched")
	b.Send(t, M{"type": "leave"})
	a.Expect(t, "peer_left")
	a.Send(t, M{"type": "next"}) // a waits again (older), interests [a]
	a.Expect(t, "waiting")
	c := e.client(t)
	join(t, c, "text", "c") // c and a do not accept each other
	b.Send(t, M{"type": "join", "mode": "text", "interests": []string{"a", "c"}})
	mb := expectMatched(t, b)
	mc := c.Expect(t, "matched")
	checkPair(t, mb, mc)
	a.ExpectNothing(t)
}

func testRule5Alone(t *testing.T, e *env) {
	a, b, ma, _ := e.pair(t, "")
	a.Send(t, M{"type": "next"})
	b.Expect(t, "peer_left")
	a.Expect(t, "waiting")
	b.Send(t, M{"type": "next"})
	mb := expectMatched(t, b)
	ma2 := a.Expect(t, "matched")
	checkPair(t, ma2, mb)
	if ma2.Str("room") == ma.Str("room") {
		t.Fatal("a new chat reused the room id")
	}
}

func testRule5Reported(t *testing.T, e *env) {
	a, b, _, _ := e.pair(t, "text")
	b.Send(t, M{"type": "report"})
	b.Expect(t, "reported")
	a.Expect(t, "peer_left")
	join(t, b, "text")
	a.Send(t, M{"type": "next"}) // the last join's prefs: text
	a.Expect(t, "waiting")
	a.ExpectNothing(t)
	e.d.Advance(e.o.InterestTimeout + time.Second)
	a.ExpectNothing(t)
	b.ExpectNothing(t)
	c := e.client(t)
	mc := joinMatched(t, c, "text")
	checkPair(t, b.Expect(t, "matched"), mc) // b waited longest
	a.ExpectNothing(t)
}

func testRule6NotMatched(t *testing.T, e *env) {
	a, b := e.client(t), e.client(t)
	join(t, a, "text")
	a.Drop()
	e.waitOnline(t, 1)
	join(t, b, "text")
	b.ExpectNothing(t)
	a2 := e.resumeLast(t, a)
	if a2.Welcome.Str("state") != "waiting" {
		t.Fatalf("resumed state %q, want waiting", a2.Welcome.Str("state"))
	}
	checkPair(t, a2.Expect(t, "matched"), b.Expect(t, "matched"))
}

// A session that resumes while waiting keeps its place: a newcomer that
// accepts two waiting sessions gets the one that joined first.
func testRule6Place(t *testing.T, e *env) {
	a, b := e.client(t), e.client(t)
	join(t, a, "text", "a")
	a.Drop()
	e.waitOnline(t, 1)
	join(t, b, "text", "b")
	a2 := e.resumeLast(t, a)
	a2.ExpectNothing(t)
	n := e.client(t)
	mn := joinMatched(t, n, "text", "b", "a")
	checkPair(t, a2.Expect(t, "matched"), mn)
	b.ExpectNothing(t)
}

// ... and its interest-timeout clock: time spent disconnected counts.
func testRule6Clock(t *testing.T, e *env) {
	a := e.client(t)
	join(t, a, "text", "a")
	e.d.Advance(e.o.InterestTimeout * 3 / 5)
	a.Drop()
	e.waitOnline(t, 0)
	e.d.Advance(e.o.InterestTimeout / 5)
	a2 := e.resumeLast(t, a)
	e.d.Advance(e.o.InterestTimeout/5 + 100*time.Millisecond)
	n := e.client(t)
	mn := joinMatched(t, n, "text")
	checkPair(t, a2.Expect(t, "matched"), mn)
}
