package match_test

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/strangerchat/stranger/internal/identity"
	"github.com/strangerchat/stranger/internal/ids"
	"github.com/strangerchat/stranger/internal/match"
	"github.com/strangerchat/stranger/internal/protocol"
)

// Identity hashes of four people.
const (
	idA identity.Hash = "a000000000000001"
	idB identity.Hash = "b000000000000002"
	idC identity.Hash = "c000000000000003"
	idD identity.Hash = "d000000000000004"
)

// joinAs joins session id for the person ih.
func (h *harness) joinAs(id ids.SessionID, ih identity.Hash, mode protocol.Mode, interests ...string) {
	h.t.Helper()
	if err := h.m.Join(ctx, id, match.Prefs{Mode: mode, Interests: interests, Identity: ih}); err != nil {
		h.t.Fatalf("Join(%s): %v", id, err)
	}
	h.check()
}

// pairAs makes a (person ia) and b (person ib) chat (video, no interests)
// and drops the events.
func (h *harness) pairAs(a ids.SessionID, ia identity.Hash, b ids.SessionID, ib identity.Hash) {
	h.t.Helper()
	h.joinAs(a, ia, video)
	h.joinAs(b, ib, video)
	h.state(a, match.Chatting)
	h.state(b, match.Chatting)
	h.rec.take()
}

func (h *harness) blocks(want int) {
	h.t.Helper()
	if got := h.m.Stats().Blocks; got != want {
		h.t.Fatalf("Stats().Blocks = %d, want %d", got, want)
	}
}

func sameReported(t *testing.T, got, want match.Reported) {
	t.Helper()
	// Times from Redis went through whole ms and ns: compare instants.
	if got.Started.Equal(want.Started) {
		got.Started = want.Started
	}
	if got.Ended.Equal(want.Ended) {
		got.Ended = want.Ended
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("reported:\n got  %+v\n want %+v", got, want)
	}
}

// A report of the current chat returns it as captured at the match, and a
// report after the partner ended (closed tab) still names its identity.
func suiteReportReturnsTheChat(t *testing.T, newHarness harnessFunc) {
	h := newHarness(t, match.MemoryConfig{InterestTimeout: time.Hour})
	h.joinAs("a", idA, text, "go", "rust")
	h.advance(time.Second)
	h.joinAs("b", idB, text, "zig", "rust", "go")
	started := t0.Add(time.Second)
	h.advance(10 * time.Second)
	got := h.report("b", "a", nil)
	sameReported(t, got, match.Reported{Partner: "a", Room: "room1", Mode: text, Common: []string{"go", "rust"},
		Started: started, Ended: started.Add(10 * time.Second), Reporter: idB, Suspect: idA})

	// The partner ends (closed tab) before the report.
	h.joinAs("c", idC, video)
	h.joinAs("d", idD, video)
	started = h.clk.Now()
	h.advance(3 * time.Second)
	h.end("d", match.ReasonLeft)
	ended := h.clk.Now()
	h.rec.take()
	h.advance(20 * time.Second)
	got = h.report("c", "d", nil)
	sameReported(t, got, match.Reported{Partner: "d", Room: "room2", Mode: video, Common: []string{},
		Started: started, Ended: ended, Reporter: idC, Suspect: idD})
	h.state("c", match.Idle)
	h.expect()
}

// Within the 60 s memory, a waiting session that reports its last partner
// gets that chat, even though it has joined again since with other prefs
// and as another identity.
func suiteRecentPartnerReportReturnsTheChat(t *testing.T, newHarness harnessFunc) {
	h := newHarness(t, match.MemoryConfig{InterestTimeout: time.Hour})
	h.joinAs("a", idA, video, "x")
	h.joinAs("b", idB, video, "x")
	started := h.clk.Now()
	h.advance(5 * time.Second)
	h.leave("b")
	ended := h.clk.Now()
	h.advance(30 * time.Second)
	h.joinAs("a", idC, text, "y")
	h.rec.take()
	got := h.report("a", "b", nil)
	sameReported(t, got, match.Reported{Partner: "b", Room: "room1", Mode: video, Common: []string{"x"},
		Started: started, Ended: ended, Reporter: idA, Suspect: idB})
	h.state("a", match.Waiting)
	h.expect()
	// The block is between the identities of the chat (A and B), not the
	// one a has now (C): a new session of B still meets a.
	h.joinAs("b2", idB, text, "y")
	h.expect(waiting("b2"),
		matched("a", "room2", "b2", true, text, 0, "y"),
		matched("b2", "room2", "a", false, text, 0, "y"))
}

// After a report, new sessions of the two people are never matched with
// each other until the block ends, and are matched with everyone else.
func suiteIdentityBlockKeepsPeopleApart(t *testing.T, newHarness harnessFunc) {
	h := newHarness(t, match.MemoryConfig{ReportBlock: time.Hour})
	h.pairAs("a", idA, "b", idB)
	h.report("a", "b", nil)
	h.blocks(2) // the sessions and the identities
	h.end("a", match.ReasonLeft)
	h.end("b", match.ReasonLeft)
	h.rec.take()

	// Both come back with new sessions (a reconnect, a new tab).
	h.joinAs("a2", idA, video)
	h.joinAs("b2", idB, video)
	h.expect(waiting("a2"), waiting("b2"))
	// They match others, oldest first.
	h.joinAs("c", idC, video)
	h.expect(waiting("c"),
		matched("a2", "room2", "c", true, video, 0),
		matched("c", "room2", "a2", false, video, 0))
	h.joinAs("d", idD, video)
	h.expect(waiting("d"),
		matched("b2", "room3", "d", true, video, 0),
		matched("d", "room3", "b2", false, video, 0))

	// Waiting for each other when the block ends: matched then.
	h.end("a2", match.ReasonLeft)
	h.end("b2", match.ReasonLeft)
	h.rec.take()
	h.joinAs("b3", idB, video)
	h.joinAs("a3", idA, video)
	h.expect(waiting("b3"), waiting("a3"))
	h.advance(time.Hour - time.Second)
	h.sweep()
	h.expect()
	h.advance(time.Second)
	h.sweep()
	h.expect(matched("b3", "room4", "a3", true, video, time.Hour),
		matched("a3", "room4", "b3", false, video, time.Hour))
	h.blocks(0)
}

// Two sessions of one identity (two tabs behind one address, or every test
// client on 127.0.0.1) reporting each other block only the two sessions.
func suiteSameIdentityReportBlocksSessionsOnly(t *testing.T, newHarness harnessFunc) {
	h := newHarness(t, match.MemoryConfig{})
	h.pairAs("a", idA, "b", idA)
	got := h.report("a", "b", nil)
	if got.Reporter != idA || got.Suspect != idA {
		t.Fatalf("identities %q, %q; want both %q", got.Reporter, got.Suspect, idA)
	}
	h.blocks(1)
	h.rec.take()
	h.joinAs("a", idA, video)
	h.joinAs("b", idA, video)
	h.expect(waiting("a"), waiting("b")) // the sessions stay apart
	h.joinAs("c", idA, video)
	h.expect(waiting("c"),
		matched("a", "room2", "c", true, video, 0),
		matched("c", "room2", "a", false, video, 0))

	// Unknown identities make no identity block either.
	h.end("b", match.ReasonLeft)
	h.pairAs("x", "", "y", idB)
	h.report("x", "y", nil)
	h.blocks(2)
}

// TestMemoryBlockCap: at MaxBlocks the oldest block is dropped to make room,
// and a pair it kept waiting apart is matched at once.
func TestMemoryBlockCap(t *testing.T) {
	h := newMemoryHarness(t, match.MemoryConfig{MaxBlocks: 3})
	h.pairAs("a", idA, "b", idB)
	h.report("a", "b", nil)  // blocks a|b and A|B
	h.joinAs("a", idA, text) // waiting apart; the pairs below chat in video
	h.joinAs("b", idB, text)
	h.advance(time.Second)
	h.pairAs("c", "", "d", "")
	h.report("c", "d", nil) // c|d: three blocks
	h.blocks(3)
	h.rec.take()

	h.pairAs("e", "", "f", "")
	// e|f drops a|b, the oldest, but A|B still keeps a and b apart.
	h.report("e", "f", nil)
	h.blocks(3)
	h.expect(peerLeft("f", "room3", match.ReasonReported))
	h.state("a", match.Waiting)

	// The next drops A|B: a and b meet.
	h.pairAs("g", "", "i", "")
	h.report("g", "i", nil)
	h.blocks(3)
	h.expect(peerLeft("i", "room4", match.ReasonReported),
		matched("a", "room5", "b", true, text, time.Second),
		matched("b", "room5", "a", false, text, time.Second))
	// c|d is still held.
	h.joinAs("c", "", video)
	h.joinAs("d", "", video)
	h.expect(waiting("c"), waiting("d"))
}

// TestMemoryBlockTimer: one timer serves every block, each ending at its own
// expiry; renewing a block moves it behind the others.
func TestMemoryBlockTimer(t *testing.T) {
	h := newMemoryHarness(t, match.MemoryConfig{ReportBlock: time.Hour})
	h.pairAs("a", "", "b", "")
	h.report("a", "b", nil)
	h.advance(10 * time.Second)
	h.pairAs("c", "", "d", "")
	h.report("c", "d", nil)
	h.advance(10 * time.Second)
	h.report("a", "b", nil) // renewed: now ends after c|d
	h.joinAs("a", "", video)
	h.joinAs("b", "", video)
	h.joinAs("c", "", text)
	h.joinAs("d", "", text)
	h.rec.take()
	h.advance(time.Hour - 20*time.Second) // a|b's first end: nothing
	h.expect()
	h.advance(10 * time.Second) // c|d's end
	h.expect(matched("c", "room3", "d", true, text, time.Hour-10*time.Second),
		matched("d", "room3", "c", false, text, time.Hour-10*time.Second))
	h.blocks(1)
	h.advance(10 * time.Second) // a|b's renewed end
	h.expect(matched("a", "room4", "b", true, video, time.Hour),
		matched("b", "room4", "a", false, video, time.Hour))
	h.blocks(0)
}

// TestMemoryBlockCapKeepsTheNewBlock: the block a report makes is in place
// before a full FIFO lifts the oldest, so the retry that lift makes cannot
// pair the two sessions being reported.
func TestMemoryBlockCapKeepsTheNewBlock(t *testing.T) {
	h := newMemoryHarness(t, match.MemoryConfig{MaxBlocks: 2})
	h.pairAs("s", idA, "p", idB)
	h.report("s", "p", nil) // s|p, A|B
	h.joinAs("s", idA, text)
	h.joinAs("p", idB, text)
	h.pairAs("x", "", "y", "")
	h.report("x", "y", nil) // A|B, x|y: s|p was lifted, A|B keeps them apart
	h.rec.take()
	// s reports p again (their chat ended within the 60 s): s|p comes back
	// and lifts A|B, but s and p stay apart.
	h.report("s", "p", nil)
	h.expect()
	h.state("s", match.Waiting)
	h.state("p", match.Waiting)
	h.blocks(2)
}

// An identity that is not a hash is refused and changes nothing.
func suiteBadIdentityRefused(t *testing.T, newHarness harnessFunc) {
	h := newHarness(t, match.MemoryConfig{})
	for _, ih := range []identity.Hash{"a\tb", "203.0.113.7", "A000000000000001", "a00000000000000"} {
		if err := h.m.Join(ctx, "a", match.Prefs{Mode: video, Identity: ih}); !errors.Is(err, identity.ErrBadHash) {
			t.Fatalf("join as %q: %v", ih, err)
		}
		if err := h.m.Next(ctx, "a", match.Prefs{Mode: video, Identity: ih}); !errors.Is(err, identity.ErrBadHash) {
			t.Fatalf("next as %q: %v", ih, err)
		}
	}
	h.state("a", match.Idle)
	h.expect()
	h.check()
}
