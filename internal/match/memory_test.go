package match_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/strangerchat/stranger/internal/clock"
	"github.com/strangerchat/stranger/internal/ids"
	"github.com/strangerchat/stranger/internal/match"
	"github.com/strangerchat/stranger/internal/protocol"
)

const (
	video = protocol.ModeVideo
	text  = protocol.ModeText
)

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

// rec is one Notify call.
type rec struct {
	Session ids.SessionID
	Ev      match.Event
}

func (r rec) String() string {
	e := r.Ev
	switch e.Kind {
	case match.EventWaiting:
		return string(r.Session) + ":waiting"
	case match.EventMatched:
		return fmt.Sprintf("%s:matched(%s with %s init=%v %v common=%#v waited=%v)",
			r.Session, e.Room, e.Partner, e.Initiator, e.Mode, e.Common, e.Waited)
	case match.EventPeerLeft:
		return fmt.Sprintf("%s:peer_left(%s %s)", r.Session, e.Room, e.Reason)
	}
	return fmt.Sprintf("%s:%+v", r.Session, e)
}

// recorder is a Notifier that keeps every event in order.
type recorder struct {
	mu  sync.Mutex
	evs []rec
}

func (r *recorder) Notify(s ids.SessionID, ev match.Event) {
	r.mu.Lock()
	r.evs = append(r.evs, rec{s, ev})
	r.mu.Unlock()
}

func (r *recorder) take() []rec {
	r.mu.Lock()
	defer r.mu.Unlock()
	evs := r.evs
	r.evs = nil
	return evs
}

type harness struct {
	t   *testing.T
	clk *clock.Fake
	m   engine
	rec *recorder
	// invariants checks the engine's consistency (CheckInvariants).
	invariants func() error
	// sweep runs what an engine does periodically besides its timers, and
	// waits for the events it caused (Redis: Sweep, which lifts identity
	// blocks); nil if nothing.
	sweepFn func()
}

func (h *harness) sweep() {
	h.t.Helper()
	if h.sweepFn != nil {
		h.sweepFn()
	}
	h.check()
}

// engine is what the suite needs of an engine under test.
type engine interface {
	// signaling.Engine, spelled out so these tests build while signaling
	// is being edited (engine_test.go checks the real interface).
	Join(ctx context.Context, session ids.SessionID, prefs match.Prefs) error
	Next(ctx context.Context, session ids.SessionID, prefs match.Prefs) error
	Leave(ctx context.Context, session ids.SessionID) error
	Report(ctx context.Context, session ids.SessionID) (match.Reported, error)
	SetConnected(ctx context.Context, session ids.SessionID, connected bool) error
	End(ctx context.Context, session ids.SessionID, reason match.Reason) error
	State(ctx context.Context, session ids.SessionID) (match.State, error)
	Stats() match.Stats
	Close()
}

// harnessFunc makes a harness around a new engine configured by cfg (the
// Redis harness maps the fields it shares).
type harnessFunc func(t *testing.T, cfg match.MemoryConfig) *harness

// suite lists the engine semantics tests that every engine must pass.
var suite = []struct {
	name string
	f    func(*testing.T, harnessFunc)
}{
	{"JoinWaitsThenMatches", suiteJoinWaitsThenMatches},
	{"UnknownSessionsCostNothing", suiteUnknownSessionsCostNothing},
	{"JoinBadState", suiteJoinBadState},
	{"Next", suiteNext},
	{"Leave", suiteLeave},
	{"EndFromEachState", suiteEndFromEachState},
	{"Report", suiteReport},
	{"ReportedPairBlockedUntilExpiry", suiteReportedPairBlockedUntilExpiry},
	{"ReportBlockIsRenewed", suiteReportBlockIsRenewed},
	{"Overloaded", suiteOverloaded},
	{"Rule1SameModeOnly", suiteRule1SameModeOnly},
	{"Rule3Interests", suiteRule3Interests},
	{"Rule3BothTimedOut", suiteRule3BothTimedOut},
	{"Rule3TimedOutStillPrefersNothing", suiteRule3TimedOutStillPrefersNothing},
	{"Rule4WaitedLongest", suiteRule4WaitedLongest},
	{"Rule5RecentPartners", suiteRule5RecentPartners},
	{"Rule5EitherMemory", suiteRule5EitherMemory},
	{"Rule6Disconnected", suiteRule6Disconnected},
	{"Rule7NoGoneSessions", suiteRule7NoGoneSessions},
	{"Close", suiteClose},
	{"CommonIsACopyPerMatch", suiteCommonIsACopyPerMatch},
	{"ReconnectKeepsPlaceAmongBlocked", suiteReconnectKeepsPlaceAmongBlocked},
	{"ReportReturnsTheChat", suiteReportReturnsTheChat},
	{"RecentPartnerReportReturnsTheChat", suiteRecentPartnerReportReturnsTheChat},
	{"IdentityBlockKeepsPeopleApart", suiteIdentityBlockKeepsPeopleApart},
	{"SameIdentityReportBlocksSessionsOnly", suiteSameIdentityReportBlocksSessionsOnly},
	{"BadIdentityRefused", suiteBadIdentityRefused},
}

// TestMemory runs the suite against the in-memory engine.
func TestMemory(t *testing.T) {
	for _, tc := range suite {
		t.Run(tc.name, func(t *testing.T) { tc.f(t, newMemoryHarness) })
	}
}

func newMemoryHarness(t *testing.T, cfg match.MemoryConfig) *harness {
	t.Helper()
	h := &harness{t: t, clk: clock.NewFake(t0), rec: &recorder{}}
	cfg.Clock = h.clk
	if cfg.NewRoomID == nil {
		n := 0
		cfg.NewRoomID = func() match.RoomID { n++; return match.RoomID(fmt.Sprintf("room%d", n)) }
	}
	m := match.NewMemory(cfg, h.rec)
	h.m = m
	h.invariants = m.CheckInvariants
	t.Cleanup(func() {
		if err := h.invariants(); err != nil {
			t.Errorf("invariants at end: %v", err)
		}
		h.m.Close()
	})
	return h
}

var ctx = context.Background()

func (h *harness) join(id ids.SessionID, mode protocol.Mode, interests ...string) {
	h.t.Helper()
	if err := h.m.Join(ctx, id, match.Prefs{Mode: mode, Interests: interests}); err != nil {
		h.t.Fatalf("Join(%s): %v", id, err)
	}
	h.check()
}

func (h *harness) next(id ids.SessionID, mode protocol.Mode, interests ...string) {
	h.t.Helper()
	if err := h.m.Next(ctx, id, match.Prefs{Mode: mode, Interests: interests}); err != nil {
		h.t.Fatalf("Next(%s): %v", id, err)
	}
	h.check()
}

func (h *harness) leave(id ids.SessionID) {
	h.t.Helper()
	if err := h.m.Leave(ctx, id); err != nil {
		h.t.Fatalf("Leave(%s): %v", id, err)
	}
	h.check()
}

func (h *harness) end(id ids.SessionID, reason match.Reason) {
	h.t.Helper()
	if err := h.m.End(ctx, id, reason); err != nil {
		h.t.Fatalf("End(%s): %v", id, err)
	}
	h.check()
}

func (h *harness) setConnected(id ids.SessionID, c bool) {
	h.t.Helper()
	if err := h.m.SetConnected(ctx, id, c); err != nil {
		h.t.Fatalf("SetConnected(%s, %v): %v", id, c, err)
	}
	h.check()
}

func (h *harness) report(id, want ids.SessionID, wantErr error) match.Reported {
	h.t.Helper()
	got, err := h.m.Report(ctx, id)
	if !errors.Is(err, wantErr) || got.Partner != want {
		h.t.Fatalf("Report(%s) = %q, %v; want %q, %v", id, got.Partner, err, want, wantErr)
	}
	h.check()
	return got
}

func (h *harness) advance(d time.Duration) {
	h.t.Helper()
	h.clk.Advance(d)
	h.check()
}

func (h *harness) check() {
	h.t.Helper()
	if err := h.invariants(); err != nil {
		h.t.Fatalf("invariants: %v", err)
	}
}

func (h *harness) state(id ids.SessionID, want match.State) {
	h.t.Helper()
	got, err := h.m.State(ctx, id)
	if err != nil || got != want {
		h.t.Fatalf("State(%s) = %v, %v; want %v", id, got, err, want)
	}
}

// expect asserts the exact events since the last call.
func (h *harness) expect(want ...rec) {
	h.t.Helper()
	got := h.rec.take()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		h.t.Fatalf("events:\n got  %v\n want %v", got, want)
	}
}

func waiting(s ids.SessionID) rec { return rec{s, match.Event{Kind: match.EventWaiting}} }

func matched(s ids.SessionID, room match.RoomID, partner ids.SessionID, initiator bool, mode protocol.Mode, waited time.Duration, common ...string) rec {
	if common == nil {
		common = []string{}
	}
	return rec{s, match.Event{Kind: match.EventMatched, Room: room, Partner: partner,
		Initiator: initiator, Mode: mode, Common: common, Waited: waited}}
}

func peerLeft(s ids.SessionID, room match.RoomID, reason match.Reason) rec {
	return rec{s, match.Event{Kind: match.EventPeerLeft, Room: room, Reason: reason}}
}

// pair makes a and b chat in room (no interests, video) and drops the events.
func (h *harness) pair(a, b ids.SessionID) {
	h.t.Helper()
	h.join(a, video)
	h.join(b, video)
	h.state(a, match.Chatting)
	h.state(b, match.Chatting)
	h.rec.take()
}

func suiteJoinWaitsThenMatches(t *testing.T, newHarness harnessFunc) {
	h := newHarness(t, match.MemoryConfig{})
	h.join("a", video)
	h.expect(waiting("a"))
	h.state("a", match.Waiting)
	h.advance(2 * time.Second)
	h.join("b", video)
	// The one that waited longer is the initiator and hears first.
	h.expect(waiting("b"),
		matched("a", "room1", "b", true, video, 2*time.Second),
		matched("b", "room1", "a", false, video, 0))
	h.state("a", match.Chatting)
	h.state("b", match.Chatting)
	st := h.m.Stats()
	if st.Chats != 1 || st.Matches != 1 || st.Sessions != 2 || st.Waiting != [3]int{} {
		t.Fatalf("stats %+v", st)
	}
}

func suiteUnknownSessionsCostNothing(t *testing.T, newHarness harnessFunc) {
	h := newHarness(t, match.MemoryConfig{})
	h.state("ghost", match.Idle)
	h.leave("ghost")
	h.setConnected("ghost", false)
	h.setConnected("ghost", true)
	h.end("ghost", match.ReasonLeft)
	h.report("ghost", "", match.ErrNotChatting)
	h.expect()
	if st := h.m.Stats(); st.Sessions != 0 {
		t.Fatalf("stats %+v: records for unknown sessions", st)
	}
	// A session that joined and left, never matched, is forgotten as well.
	h.join("a", text, "x")
	h.leave("a")
	h.expect(waiting("a"))
	if st := h.m.Stats(); st.Sessions != 0 || st.Waiting != [3]int{} {
		t.Fatalf("stats %+v after join+leave", st)
	}
}

func suiteJoinBadState(t *testing.T, newHarness harnessFunc) {
	h := newHarness(t, match.MemoryConfig{})
	h.join("a", video)
	if err := h.m.Join(ctx, "a", match.Prefs{Mode: video}); !errors.Is(err, match.ErrBadState) {
		t.Fatalf("join while waiting: %v", err)
	}
	h.join("b", video)
	if err := h.m.Join(ctx, "b", match.Prefs{Mode: text}); !errors.Is(err, match.ErrBadState) {
		t.Fatalf("join while chatting: %v", err)
	}
	h.rec.take()
	h.check()
	h.state("a", match.Chatting)
	h.state("b", match.Chatting)
	if err := h.m.Join(ctx, "c", match.Prefs{}); err == nil {
		t.Fatal("join with mode 0 accepted")
	}
	h.expect()
}

func suiteNext(t *testing.T, newHarness harnessFunc) {
	h := newHarness(t, match.MemoryConfig{})
	// From idle: like join.
	h.next("a", video)
	h.expect(waiting("a"))
	// While waiting: nothing at all.
	h.next("a", text, "other")
	h.expect()
	h.state("a", match.Waiting)
	h.next("b", video)
	h.expect(waiting("b"),
		matched("a", "room1", "b", true, video, 0),
		matched("b", "room1", "a", false, video, 0))
	h.join("c", video)
	h.expect(waiting("c"))
	// From chatting: the partner hears "next", the session queues again and
	// is matched with the one waiting.
	h.advance(time.Second)
	h.next("b", video)
	h.expect(peerLeft("a", "room1", match.ReasonNext),
		waiting("b"),
		matched("c", "room2", "b", true, video, time.Second),
		matched("b", "room2", "c", false, video, 0))
	h.state("a", match.Idle)
	h.state("b", match.Chatting)
	h.state("c", match.Chatting)
}

func suiteLeave(t *testing.T, newHarness harnessFunc) {
	h := newHarness(t, match.MemoryConfig{})
	h.pair("a", "b")
	h.leave("a")
	h.expect(peerLeft("b", "room1", match.ReasonLeft))
	h.state("a", match.Idle)
	h.state("b", match.Idle)
	h.leave("a") // idle: nothing
	h.expect()
	h.join("c", text)
	h.leave("c")
	h.expect(waiting("c"))
	h.state("c", match.Idle)
	if st := h.m.Stats(); st.Waiting != [3]int{} || st.Chats != 0 {
		t.Fatalf("stats %+v", st)
	}
	// The one who left is no longer in the queue: a newcomer waits.
	h.join("d", text)
	h.expect(waiting("d"))
}

func suiteEndFromEachState(t *testing.T, newHarness harnessFunc) {
	h := newHarness(t, match.MemoryConfig{})
	// Chatting: the partner gets the reason.
	h.pair("a", "b")
	h.end("a", match.ReasonDisconnected)
	h.expect(peerLeft("b", "room1", match.ReasonDisconnected))
	h.state("a", match.Idle)
	h.state("b", match.Idle)
	// The partner can still report the ended session within the window.
	h.report("b", "a", nil)
	// Idle with a record.
	h.end("b", match.ReasonLeft)
	h.expect()
	// Waiting: gone from the queue, never matched.
	h.join("c", video)
	h.end("c", match.ReasonLeft)
	h.join("d", video)
	h.expect(waiting("c"), waiting("d"))
	h.state("c", match.Idle)
	// Unknown: no-op.
	h.end("nobody", match.ReasonLeft)
	if st := h.m.Stats(); st.Sessions != 1 || st.Waiting[video] != 1 {
		t.Fatalf("stats %+v", st)
	}
	// An ended session may come back under the same id as a fresh one.
	h.join("c", video)
	h.expect(waiting("c"),
		matched("d", "room2", "c", true, video, 0),
		matched("c", "room2", "d", false, video, 0))
}

func suiteReport(t *testing.T, newHarness harnessFunc) {
	h := newHarness(t, match.MemoryConfig{})
	// Never chatted.
	h.report("a", "", match.ErrNotChatting)
	h.join("a", video)
	h.report("a", "", match.ErrNotChatting)
	h.rec.take()

	// Chatting: ends the chat, reporter idle, partner hears "reported".
	h.join("b", video)
	h.rec.take()
	h.report("a", "b", nil)
	h.expect(peerLeft("b", "room1", match.ReasonReported))
	h.state("a", match.Idle)
	h.state("b", match.Idle)
	// The reported one can report back within the window (idle).
	h.advance(60 * time.Second)
	h.report("b", "a", nil)
	h.state("b", match.Idle)
	h.advance(time.Nanosecond)
	h.report("b", "", match.ErrNotChatting)

	// Waiting, within the window: state unchanged, no events.
	h.pair("c", "d")
	h.leave("c")
	h.rec.take()
	h.join("d", video)
	h.advance(59 * time.Second)
	h.report("d", "c", nil)
	h.state("d", match.Waiting)
	h.expect(waiting("d"))
	h.advance(2 * time.Second)
	h.report("d", "", match.ErrNotChatting)
	// The pair is blocked: c joining does not meet d.
	h.join("c", video)
	h.expect(waiting("c"))
	h.state("c", match.Waiting)
	h.state("d", match.Waiting)
}

func suiteReportedPairBlockedUntilExpiry(t *testing.T, newHarness harnessFunc) {
	h := newHarness(t, match.MemoryConfig{ReportBlock: time.Hour})
	h.pair("a", "b")
	h.report("a", "b", nil)
	h.rec.take()
	h.join("a", video)
	h.join("b", video)
	h.expect(waiting("a"), waiting("b"))
	// Blocked sessions still match others, oldest first (rule 4).
	h.join("c", video)
	h.expect(waiting("c"),
		matched("a", "room2", "c", true, video, 0),
		matched("c", "room2", "a", false, video, 0))
	h.join("a2", video)
	h.expect(waiting("a2"),
		matched("b", "room3", "a2", true, video, 0),
		matched("a2", "room3", "b", false, video, 0))

	// Again both waiting and blocked; the block expiring matches them at
	// that moment.
	h.end("c", match.ReasonLeft)
	h.end("a2", match.ReasonLeft)
	h.rec.take()
	h.join("b", video)
	h.join("a", video)
	h.expect(waiting("b"), waiting("a"))
	h.advance(time.Hour - 1)
	h.expect()
	h.advance(1)
	h.expect(matched("b", "room4", "a", true, video, time.Hour),
		matched("a", "room4", "b", false, video, time.Hour))
}

func suiteReportBlockIsRenewed(t *testing.T, newHarness harnessFunc) {
	h := newHarness(t, match.MemoryConfig{ReportBlock: time.Hour})
	h.pair("a", "b")
	h.report("a", "b", nil)
	h.advance(50 * time.Second)
	h.report("a", "b", nil) // again, through the 60 s window: until 1h50s
	h.join("a", video)
	h.join("b", video)
	h.rec.take()
	h.advance(time.Hour - 50*time.Second) // the first block's end
	h.expect()
	h.advance(50 * time.Second)
	h.expect(matched("a", "room2", "b", true, video, time.Hour),
		matched("b", "room2", "a", false, video, time.Hour))
}

func suiteOverloaded(t *testing.T, newHarness harnessFunc) {
	h := newHarness(t, match.MemoryConfig{MaxWaiting: 2})
	h.join("a", video, "x")
	h.join("b", text, "y")
	h.rec.take()
	if err := h.m.Join(ctx, "c", match.Prefs{Mode: video}); !errors.Is(err, match.ErrOverloaded) {
		t.Fatalf("join beyond MaxWaiting: %v", err)
	}
	if err := h.m.Next(ctx, "c", match.Prefs{Mode: video}); !errors.Is(err, match.ErrOverloaded) {
		t.Fatalf("next beyond MaxWaiting: %v", err)
	}
	h.expect()
	h.state("c", match.Idle)
	if st := h.m.Stats(); st.Sessions != 2 {
		t.Fatalf("refused join left a record: %+v", st)
	}
	// A refused next changes nothing: the chat goes on.
	h.leave("b")
	h.join("c", video, "x") // matches a
	h.join("b", text, "y")
	h.join("d", text, "z")
	h.rec.take()
	if err := h.m.Next(ctx, "c", match.Prefs{Mode: video}); !errors.Is(err, match.ErrOverloaded) {
		t.Fatalf("next from chatting beyond MaxWaiting: %v", err)
	}
	h.check()
	h.expect()
	h.state("c", match.Chatting)
	h.state("a", match.Chatting)
	// Room again: one leaves the queue.
	h.leave("d")
	h.next("c", video)
	h.expect(peerLeft("a", "room1", match.ReasonNext), waiting("c"))
}

// Rule 1: only sessions of the same mode are matched.
func suiteRule1SameModeOnly(t *testing.T, newHarness harnessFunc) {
	h := newHarness(t, match.MemoryConfig{})
	h.join("v", video)
	h.join("t", text)
	h.expect(waiting("v"), waiting("t"))
	h.advance(time.Hour)
	h.join("t2", text)
	h.expect(waiting("t2"),
		matched("t", "room1", "t2", true, text, time.Hour),
		matched("t2", "room1", "t", false, text, 0))
	h.state("v", match.Waiting)
	if st := h.m.Stats(); st.Waiting != [3]int{0, 1, 0} {
		t.Fatalf("stats %+v", st)
	}
}

// Rule 3: interests first; anyone after the interest timeout.
func suiteRule3Interests(t *testing.T, newHarness harnessFunc) {
	h := newHarness(t, match.MemoryConfig{InterestTimeout: 5 * time.Second})
	h.join("a", video, "music", "film")
	h.join("b", video, "sport")
	h.expect(waiting("a"), waiting("b"))
	// A session without interests accepts them, but they do not accept it.
	h.join("c", video)
	h.expect(waiting("c"))
	// Sharing one interest matches at once; Common in the initiator's order.
	h.advance(time.Second)
	h.join("d", video, "film", "sport", "music")
	h.expect(waiting("d"),
		matched("a", "room1", "d", true, video, time.Second, "music", "film"),
		matched("d", "room1", "a", false, video, 0, "music", "film"))
	// b's timeout passes: it accepts anyone now and meets c at that moment.
	h.advance(4*time.Second - 1)
	h.expect()
	h.advance(1)
	h.expect(matched("b", "room2", "c", true, video, 5*time.Second),
		matched("c", "room2", "b", false, video, 5*time.Second))
}

func suiteRule3BothTimedOut(t *testing.T, newHarness harnessFunc) {
	h := newHarness(t, match.MemoryConfig{InterestTimeout: 5 * time.Second})
	h.join("a", text, "x")
	h.advance(2 * time.Second)
	h.join("b", text, "y")
	h.advance(3 * time.Second) // a times out; b does not accept a yet
	h.expect(waiting("a"), waiting("b"))
	// A newcomer with no interests meets the timed-out a, not b.
	h.join("c", text)
	h.expect(waiting("c"),
		matched("a", "room1", "c", true, text, 5*time.Second),
		matched("c", "room1", "a", false, text, 0))
	h.join("d", text, "z")
	h.advance(2 * time.Second) // b times out; d has not
	h.expect(waiting("d"))
	h.advance(3 * time.Second) // d times out too: both accept anyone
	h.expect(matched("b", "room2", "d", true, text, 8*time.Second),
		matched("d", "room2", "b", false, text, 5*time.Second))
}

func suiteRule3TimedOutStillPrefersNothing(t *testing.T, newHarness harnessFunc) {
	// A timed-out session accepts anyone, and one sharing an interest is
	// acceptable to it too: the older one wins (rule 4).
	h := newHarness(t, match.MemoryConfig{InterestTimeout: 5 * time.Second})
	h.join("a", video, "x")
	h.setConnected("a", false)
	h.advance(time.Second)
	h.join("b", video)
	h.setConnected("b", false)
	h.advance(time.Second)
	h.join("c", video, "x", "y")
	h.setConnected("c", false)
	h.advance(10 * time.Second) // all timed out, none connected
	h.setConnected("c", true)
	h.setConnected("b", true) // b is older than c: matched
	h.setConnected("a", true)
	h.expect(waiting("a"), waiting("b"), waiting("c"),
		matched("b", "room1", "c", true, video, 11*time.Second),
		matched("c", "room1", "b", false, video, 10*time.Second))
	h.state("a", match.Waiting)
}

// Rule 4: among acceptable partners, the one that has waited longest wins.
func suiteRule4WaitedLongest(t *testing.T, newHarness harnessFunc) {
	h := newHarness(t, match.MemoryConfig{InterestTimeout: time.Hour})
	h.join("a", video, "y")
	h.advance(time.Second)
	h.join("b", video, "x")
	h.advance(time.Second)
	h.join("c", video, "z")
	h.rec.take()
	h.join("d", video, "x", "z", "y")
	h.expect(waiting("d"),
		matched("a", "room1", "d", true, video, 2*time.Second, "y"),
		matched("d", "room1", "a", false, video, 0, "y"))
	h.join("e", video, "z", "x")
	h.expect(waiting("e"),
		matched("b", "room2", "e", true, video, time.Second, "x"),
		matched("e", "room2", "b", false, video, 0, "x"))
}

// Rule 5: parted sessions meet again only without another acceptable
// partner; reported ones never.
func suiteRule5RecentPartners(t *testing.T, newHarness harnessFunc) {
	h := newHarness(t, match.MemoryConfig{InterestTimeout: time.Hour})
	h.join("a", video, "x")
	h.join("b", video, "x")
	h.rec.take()
	// a moves on; b has no one else and meets a again.
	h.next("a", video, "x")
	h.next("b", video, "x")
	h.expect(peerLeft("b", "room1", match.ReasonNext), waiting("a"),
		waiting("b"), // b was idle: nothing to end
		matched("a", "room2", "b", true, video, 0, "x"),
		matched("b", "room2", "a", false, video, 0, "x"))

	// Now with an alternative: d is younger than a but wins.
	h.next("a", video, "x")
	h.join("d", video, "y")
	h.next("b", video, "x", "y")
	h.expect(peerLeft("b", "room2", match.ReasonNext), waiting("a"),
		waiting("d"),
		waiting("b"),
		matched("d", "room3", "b", true, video, 0, "y"),
		matched("b", "room3", "d", false, video, 0, "y"))
	h.state("a", match.Waiting)
}

func suiteRule5EitherMemory(t *testing.T, newHarness harnessFunc) {
	h := newHarness(t, match.MemoryConfig{InterestTimeout: time.Hour})
	h.join("a", video, "x")
	h.join("b", video, "x")
	h.next("a", video, "x") // a waits, remembering b
	// b meets c and parts from it: b now remembers c, but a still remembers b.
	h.join("b", video, "z")
	h.join("c", video, "z")
	h.leave("c")
	h.join("d", video, "y")
	h.rec.take()
	h.next("b", video, "x", "y")
	h.expect(waiting("b"),
		matched("d", "room3", "b", true, video, 0, "y"),
		matched("b", "room3", "d", false, video, 0, "y"))
	// Without an alternative, they meet again.
	h.next("b", video, "x", "y")
	h.expect(peerLeft("d", "room3", match.ReasonNext), waiting("b"),
		matched("a", "room4", "b", true, video, 0, "x"),
		matched("b", "room4", "a", false, video, 0, "x"))
}

// Rule 6: a dropped session is not matched, keeps its place and its
// interest clock, and is matched at once when it comes back.
func suiteRule6Disconnected(t *testing.T, newHarness harnessFunc) {
	h := newHarness(t, match.MemoryConfig{InterestTimeout: 5 * time.Second})
	h.join("a", video, "x")
	h.setConnected("a", false)
	h.advance(time.Second)
	h.join("b", video, "x")
	h.expect(waiting("a"), waiting("b"))
	h.state("a", match.Waiting)
	if st := h.m.Stats(); st.Waiting[video] != 2 {
		t.Fatalf("a disconnected is still in the queue: %+v", st)
	}
	h.setConnected("a", true)
	h.expect(matched("a", "room1", "b", true, video, time.Second, "x"),
		matched("b", "room1", "a", false, video, 0, "x"))

	// Keeps its place: older than a newcomer after reconnecting.
	h.join("c", text, "x")
	h.setConnected("c", false)
	h.advance(time.Second)
	h.join("d", text, "y")
	h.advance(time.Second)
	h.setConnected("c", true)
	h.join("e", text, "y", "x")
	h.expect(waiting("c"), waiting("d"), waiting("e"),
		matched("c", "room2", "e", true, text, 2*time.Second, "x"),
		matched("e", "room2", "c", false, text, 0, "x"))
	h.leave("d")

	// Keeps its interest clock: it ran out while f was away.
	h.join("f", text, "x")
	h.setConnected("f", false)
	h.advance(6 * time.Second)
	h.join("g", text)
	h.expect(waiting("f"), waiting("g"))
	h.setConnected("f", true)
	h.expect(matched("f", "room3", "g", true, text, 6*time.Second),
		matched("g", "room3", "f", false, text, 0))

	// A chatting session that drops stays in its chat; nobody hears of it.
	h.setConnected("f", false)
	h.setConnected("f", true)
	h.expect()
	h.state("f", match.Chatting)

	// Dropped while idle, then joining: waits unmatched until it is back.
	h.setConnected("f", false)
	h.leave("f")
	h.expect(peerLeft("g", "room3", match.ReasonLeft))
	h.join("f", video)
	h.join("h", video)
	h.expect(waiting("f"), waiting("h"))
	h.advance(time.Second)
	h.setConnected("f", true)
	h.expect(matched("f", "room4", "h", true, video, time.Second),
		matched("h", "room4", "f", false, video, time.Second))
}

// Rule 7: no session in two chats, no chat with a gone session.
func suiteRule7NoGoneSessions(t *testing.T, newHarness harnessFunc) {
	h := newHarness(t, match.MemoryConfig{})
	h.pair("a", "b")
	// A chatting session cannot be matched again, whatever it sends.
	h.join("c", video)
	h.next("c", video)
	h.expect(waiting("c"))
	h.state("a", match.Chatting)
	h.end("a", match.ReasonDisconnected)
	h.expect(peerLeft("b", "room1", match.ReasonDisconnected))
	// b is free, a is gone: the waiting c meets b, and nobody meets a.
	h.next("b", video)
	h.expect(waiting("b"),
		matched("c", "room2", "b", true, video, 0),
		matched("b", "room2", "c", false, video, 0))
	h.join("d", video)
	h.end("d", match.ReasonLeft)
	h.join("e", video)
	h.expect(waiting("d"), waiting("e"))
	if st := h.m.Stats(); st.Sessions != 3 || st.Chats != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func suiteClose(t *testing.T, newHarness harnessFunc) {
	h := newHarness(t, match.MemoryConfig{InterestTimeout: time.Second})
	h.join("a", video, "x")
	h.join("b", video, "y")
	h.rec.take()
	h.m.Close()
	h.clk.Advance(time.Hour)
	h.expect()
	if err := h.m.Join(ctx, "c", match.Prefs{Mode: video}); !errors.Is(err, match.ErrOverloaded) {
		t.Fatalf("join after close: %v", err)
	}
	h.leave("a")
	h.end("b", match.ReasonLeft)
	h.expect()
}

func TestDefaultRoomID(t *testing.T) {
	rec := &recorder{}
	m := match.NewMemory(match.MemoryConfig{Clock: clock.NewFake(t0)}, rec)
	defer m.Close()
	seen := map[match.RoomID]bool{}
	for i := range 50 {
		a, b := ids.SessionID(fmt.Sprint("a", i)), ids.SessionID(fmt.Sprint("b", i))
		if err := m.Join(ctx, a, match.Prefs{Mode: text}); err != nil {
			t.Fatal(err)
		}
		if err := m.Join(ctx, b, match.Prefs{Mode: text}); err != nil {
			t.Fatal(err)
		}
	}
	re := regexp.MustCompile(`^r_[a-z2-7]{16}$`)
	for _, r := range rec.take() {
		if r.Ev.Kind != match.EventMatched || !r.Ev.Initiator {
			continue
		}
		if !re.MatchString(string(r.Ev.Room)) || seen[r.Ev.Room] {
			t.Fatalf("room id %q: bad or repeated", r.Ev.Room)
		}
		seen[r.Ev.Room] = true
	}
	if len(seen) != 50 {
		t.Fatalf("%d rooms", len(seen))
	}
}

func suiteCommonIsACopyPerMatch(t *testing.T, newHarness harnessFunc) {
	h := newHarness(t, match.MemoryConfig{})
	in := []string{"x", "y"}
	if err := h.m.Join(ctx, "a", match.Prefs{Mode: video, Interests: in}); err != nil {
		t.Fatal(err)
	}
	in[0] = "changed" // the engine keeps its own copy of the prefs
	h.join("b", video, "x")
	h.expect(waiting("a"), waiting("b"),
		matched("a", "room1", "b", true, video, 0, "x"),
		matched("b", "room1", "a", false, video, 0, "x"))
}

// A session that comes back takes its old place in front of younger ones
// still waiting (here kept waiting beside it by a report block).
func suiteReconnectKeepsPlaceAmongBlocked(t *testing.T, newHarness harnessFunc) {
	h := newHarness(t, match.MemoryConfig{})
	h.pair("a", "b")
	h.report("a", "b", nil)
	h.join("a", video)
	h.setConnected("a", false)
	h.advance(time.Second)
	h.join("b", video)
	h.advance(time.Second)
	h.setConnected("a", true)
	h.rec.take()
	h.join("c", video)
	h.expect(waiting("c"),
		matched("a", "room2", "c", true, video, 2*time.Second),
		matched("c", "room2", "a", false, video, 0))
}

// advancingNotifier moves the fake clock on as soon as a session is told it
// waits: a client that reacts to `waiting` before the engine has finished
// its join (as a test's fake clock does, or a slow goroutine).
type advancingNotifier struct {
	recorder
	clk *clock.Fake
	by  time.Duration
}

func (n *advancingNotifier) Notify(s ids.SessionID, ev match.Event) {
	n.recorder.Notify(s, ev)
	if ev.Kind == match.EventWaiting {
		n.clk.Advance(n.by) // no timer is due yet: nothing fires under the engine's lock
	}
}

// TestInterestClockStartsAtTheJoin: the interest timeout counts from the
// join, however late the engine arms its timer relative to the waiting
// event (the timer was once armed from the clock's time after the event,
// so a clock that moved in between made it fire late).
func TestInterestClockStartsAtTheJoin(t *testing.T) {
	clk := clock.NewFake(t0)
	n := &advancingNotifier{clk: clk, by: 2 * time.Second}
	m := match.NewMemory(match.MemoryConfig{Clock: clk, InterestTimeout: 5 * time.Second}, n)
	defer m.Close()
	if err := m.Join(ctx, "x", match.Prefs{Mode: text, Interests: []string{"cats"}}); err != nil {
		t.Fatal(err)
	}
	n.by = 0
	if err := m.Join(ctx, "y", match.Prefs{Mode: text}); err != nil { // accepts x; x does not accept y yet
		t.Fatal(err)
	}
	clk.Advance(3*time.Second + time.Millisecond) // 5 s after x's join
	deadline := time.Now().Add(2 * time.Second)
	for {
		for _, r := range n.take() {
			if r.Ev.Kind == match.EventMatched {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("x was not matched with y 5 s after its join: its interest clock started late")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
