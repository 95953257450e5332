package match_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strangerchat/stranger/internal/clock"
	"github.com/strangerchat/stranger/internal/identity"
	"github.com/strangerchat/stranger/internal/ids"
	"github.com/strangerchat/stranger/internal/match"
	"github.com/strangerchat/stranger/internal/protocol"
)

// model is a deliberately naive engine: it scans every session for every
// decision. The real engine, with its indexes, must emit exactly the same
// events for any sequence of operations.
type model struct {
	now                       time.Time
	timeout, recent, blockFor time.Duration
	maxWaiting                int
	sessions                  map[ids.SessionID]*mSession
	blocks                    map[[2]ids.SessionID]mBlock
	iblocks                   map[[2]identity.Hash]mBlock
	// identityAtSweep: identity blocks end only when the engine sweeps,
	// after each advance (the Redis engine), not at their expiry.
	identityAtSweep      bool
	seq, blockSeq, rooms int
	matches              uint64
	evs                  []rec
}

type mSession struct {
	identity  identity.Hash
	chat      match.Reported // the current or last chat, as a report returns it (Partner, Ended unset)
	state     match.State
	connected bool
	mode      protocol.Mode
	interests []string
	seq       int
	enq       time.Time
	timedOut  bool
	partner   ids.SessionID
	room      match.RoomID
	last      ids.SessionID
	lastEnded time.Time
}

type mBlock struct {
	expires time.Time
	seq     int
}

func pairOf(x, y ids.SessionID) [2]ids.SessionID {
	if x > y {
		x, y = y, x
	}
	return [2]ids.SessionID{x, y}
}

func (md *model) get(id ids.SessionID) *mSession {
	s := md.sessions[id]
	if s == nil {
		s = &mSession{connected: true}
		md.sessions[id] = s
	}
	return s
}

func (md *model) waitingCount() int {
	n := 0
	for _, s := range md.sessions {
		if s.state == match.Waiting {
			n++
		}
	}
	return n
}

func (md *model) full() bool { return md.maxWaiting > 0 && md.waitingCount() >= md.maxWaiting }

func (md *model) notify(id ids.SessionID, ev match.Event) { md.evs = append(md.evs, rec{id, ev}) }

func (md *model) join(id ids.SessionID, p match.Prefs) error {
	if s := md.sessions[id]; s != nil && s.state != match.Idle {
		return match.ErrBadState
	}
	if md.full() {
		return match.ErrOverloaded
	}
	md.enqueue(id, p)
	return nil
}

func (md *model) next(id ids.SessionID, p match.Prefs) error {
	s := md.sessions[id]
	if s != nil && s.state == match.Waiting {
		return nil
	}
	if md.full() {
		return match.ErrOverloaded
	}
	if s != nil && s.state == match.Chatting {
		md.endChat(id, match.ReasonNext)
	}
	md.enqueue(id, p)
	return nil
}

func (md *model) leave(id ids.SessionID) {
	s := md.sessions[id]
	if s == nil {
		return
	}
	switch s.state {
	case match.Chatting:
		md.endChat(id, match.ReasonLeft)
	case match.Waiting:
		s.state = match.Idle
	}
}

func (md *model) report(id ids.SessionID) (match.Reported, error) {
	s := md.sessions[id]
	if s == nil {
		return match.Reported{}, match.ErrNotChatting
	}
	r := s.chat
	switch {
	case s.state == match.Chatting:
		r.Partner, r.Ended = s.partner, md.now
		md.endChat(id, match.ReasonReported)
	case s.last != "" && md.now.Sub(s.lastEnded) <= md.recent:
		r.Partner, r.Ended = s.last, s.lastEnded
	default:
		return match.Reported{}, match.ErrNotChatting
	}
	md.blockSeq++
	md.blocks[pairOf(id, r.Partner)] = mBlock{md.now.Add(md.blockFor), md.blockSeq}
	if x, y := r.Reporter, r.Suspect; x != "" && y != "" && x != y {
		if x > y {
			x, y = y, x
		}
		md.blockSeq++
		md.iblocks[[2]identity.Hash{x, y}] = mBlock{md.now.Add(md.blockFor), md.blockSeq}
	}
	return r, nil
}

func (md *model) identityBlocked(x, y identity.Hash) bool {
	if x == "" || y == "" || x == y {
		return false
	}
	if x > y {
		x, y = y, x
	}
	_, ok := md.iblocks[[2]identity.Hash{x, y}]
	return ok
}

// liftIdentities ends the identity block k and retries matching for the
// waiting, connected sessions of both identities, oldest first.
func (md *model) liftIdentities(k [2]identity.Hash) {
	delete(md.iblocks, k)
	var retry []ids.SessionID
	for id, s := range md.sessions {
		if s.state == match.Waiting && s.connected && (s.identity == k[0] || s.identity == k[1]) {
			retry = append(retry, id)
		}
	}
	slices.SortFunc(retry, func(x, y ids.SessionID) int { return md.sessions[x].seq - md.sessions[y].seq })
	for _, id := range retry {
		if s := md.sessions[id]; s != nil && s.state == match.Waiting {
			md.tryMatch(id)
		}
	}
}

func (md *model) setConnected(id ids.SessionID, c bool) {
	s := md.sessions[id]
	if s == nil && !c {
		s = md.get(id)
	}
	if s == nil || s.connected == c {
		return
	}
	s.connected = c
	if c && s.state == match.Waiting {
		md.tryMatch(id)
	}
}

func (md *model) end(id ids.SessionID, reason match.Reason) {
	s := md.sessions[id]
	if s == nil {
		return
	}
	if s.state == match.Chatting {
		md.endChat(id, reason)
	}
	delete(md.sessions, id)
}

func (md *model) enqueue(id ids.SessionID, p match.Prefs) {
	s := md.get(id)
	md.seq++
	s.state, s.mode, s.interests, s.identity = match.Waiting, p.Mode, slices.Clone(p.Interests), p.Identity
	s.seq, s.enq, s.timedOut = md.seq, md.now, false
	md.notify(id, match.Event{Kind: match.EventWaiting})
	if s.connected {
		md.tryMatch(id)
	}
}

func (md *model) endChat(id ids.SessionID, reason match.Reason) {
	s := md.sessions[id]
	p := md.sessions[s.partner]
	room := s.room
	s.last, p.last = s.partner, id
	for _, x := range []*mSession{s, p} {
		x.state, x.room, x.partner, x.lastEnded = match.Idle, "", "", md.now
	}
	md.notify(s.last, match.Event{Kind: match.EventPeerLeft, Room: room, Reason: reason})
}

func mOpen(s *mSession) bool { return len(s.interests) == 0 || s.timedOut }

func mAccepts(a, b *mSession) bool {
	if mOpen(a) {
		return true
	}
	for _, x := range a.interests {
		if slices.Contains(b.interests, x) {
			return true
		}
	}
	return false
}

func (md *model) tryMatch(id ids.SessionID) {
	s := md.sessions[id]
	var best, recent ids.SessionID
	for cid, c := range md.sessions {
		if cid == id || c.state != match.Waiting || !c.connected || c.mode != s.mode {
			continue
		}
		if !mAccepts(s, c) || !mAccepts(c, s) {
			continue
		}
		if _, ok := md.blocks[pairOf(id, cid)]; ok || md.identityBlocked(s.identity, c.identity) {
			continue
		}
		if s.last == cid || c.last == id {
			if recent == "" || c.seq < md.sessions[recent].seq {
				recent = cid
			}
		} else if best == "" || c.seq < md.sessions[best].seq {
			best = cid
		}
	}
	if best == "" {
		best = recent
	}
	if best == "" {
		return
	}
	a, b := best, id
	if md.sessions[b].seq < md.sessions[a].seq {
		a, b = b, a
	}
	sa, sb := md.sessions[a], md.sessions[b]
	common := []string{}
	for _, x := range sa.interests {
		if slices.Contains(sb.interests, x) {
			common = append(common, x)
		}
	}
	md.rooms++
	room := match.RoomID(fmt.Sprintf("room%d", md.rooms))
	md.matches++
	for _, x := range []*mSession{sa, sb} {
		x.state, x.room, x.last = match.Chatting, room, ""
	}
	sa.partner, sb.partner = b, a
	sa.chat = match.Reported{Room: room, Mode: sa.mode, Common: common, Started: md.now, Reporter: sa.identity, Suspect: sb.identity}
	sb.chat = match.Reported{Room: room, Mode: sb.mode, Common: common, Started: md.now, Reporter: sb.identity, Suspect: sa.identity}
	md.notify(a, match.Event{Kind: match.EventMatched, Room: room, Partner: b, Initiator: true,
		Mode: sa.mode, Common: common, Waited: md.now.Sub(sa.enq)})
	md.notify(b, match.Event{Kind: match.EventMatched, Room: room, Partner: a,
		Mode: sb.mode, Common: common, Waited: md.now.Sub(sb.enq)})
}

// advance fires the model's "timers" in deadline order, like clock.Fake.
func (md *model) advance(d time.Duration) {
	end := md.now.Add(d)
	for {
		var at time.Time
		var who ids.SessionID
		var blk [2]ids.SessionID
		var iblk [2]identity.Hash
		isBlock, isIBlock, found, tie := false, false, false, 0
		for id, s := range md.sessions {
			if s.state != match.Waiting || len(s.interests) == 0 || s.timedOut {
				continue
			}
			t := s.enq.Add(md.timeout)
			if t.After(end) {
				continue
			}
			if !found || t.Before(at) || (t.Equal(at) && s.seq < tie) {
				at, who, found, tie = t, id, true, s.seq
			}
		}
		for k, b := range md.blocks {
			if b.expires.After(end) {
				continue
			}
			if !found || b.expires.Before(at) || (isBlock && b.expires.Equal(at) && b.seq < tie) {
				at, blk, isBlock, found, tie = b.expires, k, true, true, b.seq
			}
		}
		for k, b := range md.iblocks {
			if md.identityAtSweep || b.expires.After(end) {
				continue
			}
			if !found || b.expires.Before(at) || ((isBlock || isIBlock) && b.expires.Equal(at) && b.seq < tie) {
				at, iblk, isBlock, isIBlock, found, tie = b.expires, k, true, true, true, b.seq
			}
		}
		if !found {
			md.now = end
			md.sweep()
			return
		}
		if at.After(md.now) {
			md.now = at
		}
		if isIBlock {
			md.liftIdentities(iblk)
			continue
		}
		if isBlock {
			delete(md.blocks, blk)
			for _, id := range blk {
				if s := md.sessions[id]; s != nil && s.state == match.Waiting && s.connected {
					md.tryMatch(id)
				}
			}
			continue
		}
		s := md.sessions[who]
		s.timedOut = true
		if s.connected {
			md.tryMatch(who)
		}
	}
}

// sweep is the Redis engine's Sweep after an advance: the identity blocks
// that ended go, by expiry and pair (the order of its sorted set). It works
// in whole milliseconds: a block ends at the ms its duration truncates to.
func (md *model) sweep() {
	if !md.identityAtSweep {
		return
	}
	type due struct {
		k  [2]identity.Hash
		at time.Time
	}
	var ds []due
	for k, b := range md.iblocks {
		at := b.expires.Add(-md.blockFor).Add(md.blockFor.Truncate(time.Millisecond))
		if !at.After(md.now) {
			ds = append(ds, due{k, at})
		}
	}
	slices.SortFunc(ds, func(x, y due) int {
		if c := x.at.Compare(y.at); c != 0 {
			return c
		}
		return strings.Compare(string(x.k[0])+"\t"+string(x.k[1]), string(y.k[0])+"\t"+string(y.k[1]))
	})
	for _, d := range ds {
		md.liftIdentities(d.k)
	}
}

// modelEngine makes an engine under test for one seed of the model test:
// the engine, its invariants check, its teardown and what it runs after
// the clock moved besides its timers (nil: nothing; else it lifts the
// identity blocks that ended, see model.identityAtSweep).
type modelEngine func(t *testing.T, cfg match.MemoryConfig, rec *recorder) (m engine, invariants func() error, closeEngine, sweep func())

func newMemoryModelEngine(_ *testing.T, cfg match.MemoryConfig, rec *recorder) (engine, func() error, func(), func()) {
	m := match.NewMemory(cfg, rec)
	return m, m.CheckInvariants, m.Close, nil
}

// TestMatchesNaiveModel runs random operations against the engine and the
// naive model and requires identical events, errors and states.
func TestMatchesNaiveModel(t *testing.T) {
	runNaiveModel(t, 0, 300, 400, newMemoryModelEngine)
}

// runNaiveModel runs seeds first, first+1, ... first+seeds-1.
func runNaiveModel(t *testing.T, first, seeds, ops int, newEngine modelEngine) {
	sids := []ids.SessionID{"s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11"}
	topics := []string{"a", "b", "c", "d"}
	for seed := uint64(first); seed < uint64(first+seeds); seed++ {
		if testing.Short() && seed >= uint64(first+max(1, seeds/10)) {
			break
		}
		rng := rand.New(rand.NewPCG(seed, 7))
		clk := clock.NewFake(t0)
		rec := &recorder{}
		rooms := 0
		cfg := match.MemoryConfig{
			Clock:           clk,
			InterestTimeout: 5 * time.Second,
			// Not a whole number of milliseconds: a block never expires at
			// the same instant as an interest timeout, whose order would
			// depend on timer creation order.
			ReportBlock:   60*time.Second + time.Nanosecond,
			RecentPartner: 10 * time.Second,
			MaxWaiting:    int(seed % 8), // 0 (unlimited) to 7
			NewRoomID:     func() match.RoomID { rooms++; return match.RoomID(fmt.Sprintf("room%d", rooms)) },
		}
		m, invariants, closeEngine, sweep := newEngine(t, cfg, rec)
		md := &model{now: t0, timeout: cfg.InterestTimeout, recent: cfg.RecentPartner, blockFor: cfg.ReportBlock,
			maxWaiting: cfg.MaxWaiting, sessions: map[ids.SessionID]*mSession{}, blocks: map[[2]ids.SessionID]mBlock{},
			iblocks: map[[2]identity.Hash]mBlock{}, identityAtSweep: sweep != nil}
		var log []string
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("seed %d after %d ops:\n%s\n%s", seed, len(log), fmt.Sprintf(format, args...), joinLast(log, 25))
		}
		people := []identity.Hash{"", idA, idB, idC}
		prefs := func() match.Prefs {
			p := match.Prefs{Mode: protocol.Modes[rng.IntN(2)], Identity: people[rng.IntN(len(people))]}
			for _, i := range rng.Perm(len(topics))[:rng.IntN(3)] {
				p.Interests = append(p.Interests, topics[i])
			}
			return p
		}
		for range ops {
			id := sids[rng.IntN(len(sids))]
			var err, merr error
			var op string
			switch k := rng.IntN(100); {
			case k < 25:
				p := prefs()
				op = fmt.Sprintf("join %s %v %v", id, p.Mode, p.Interests)
				err, merr = m.Join(ctx, id, p), md.join(id, p)
			case k < 40:
				p := prefs()
				op = fmt.Sprintf("next %s %v %v", id, p.Mode, p.Interests)
				err, merr = m.Next(ctx, id, p), md.next(id, p)
			case k < 50:
				op = "leave " + string(id)
				err = m.Leave(ctx, id)
				md.leave(id)
			case k < 58:
				got, gerr := m.Report(ctx, id)
				want, werr := md.report(id)
				op = fmt.Sprintf("report %s -> %q %v", id, got.Partner, gerr)
				if got.Started.Equal(want.Started) && got.Ended.Equal(want.Ended) {
					got.Started, got.Ended = want.Started, want.Ended // Redis's times have no location
				}
				if !reflect.DeepEqual(got, want) {
					fail("report %s:\n got   %+v\n model %+v", id, got, want)
				}
				err, merr = gerr, werr
			case k < 70:
				c := rng.IntN(3) > 0
				op = fmt.Sprintf("connected %s %v", id, c)
				err = m.SetConnected(ctx, id, c)
				md.setConnected(id, c)
			case k < 75:
				op = "end " + string(id)
				err = m.End(ctx, id, match.ReasonDisconnected)
				md.end(id, match.ReasonDisconnected)
			default:
				d := time.Duration(rng.IntN(7000)) * time.Millisecond
				op = fmt.Sprintf("advance %v", d)
				clk.Advance(d)
				if sweep != nil {
					sweep()
				}
				md.advance(d)
			}
			log = append(log, op)
			if !errors.Is(err, merr) || (err == nil) != (merr == nil) {
				fail("%s: error %v, model %v", op, err, merr)
			}
			got := rec.take()
			if len(got) != 0 || len(md.evs) != 0 {
				if !reflect.DeepEqual(got, md.evs) {
					fail("%s: events\n got   %v\n model %v", op, got, md.evs)
				}
			}
			md.evs = nil
			if err := invariants(); err != nil {
				fail("%s: %v", op, err)
			}
			for _, id := range sids {
				st, _ := m.State(ctx, id)
				want := match.Idle
				if s := md.sessions[id]; s != nil {
					want = s.state
				}
				if st != want {
					fail("%s: state of %s %v, model %v", op, id, st, want)
				}
			}
			if st := m.Stats(); st.Matches != md.matches {
				fail("%s: %d matches, model %d", op, st.Matches, md.matches)
			}
		}
		closeEngine()
	}
}

func joinLast(log []string, n int) string {
	if len(log) > n {
		log = log[len(log)-n:]
	}
	out := ""
	for _, l := range log {
		out += "  " + l + "\n"
	}
	return out
}

// pairChecker is a Notifier that checks, as events arrive, that every chat
// has exactly two sessions naming each other, one initiator, and that a
// peer_left always concerns the session's current chat.
type pairChecker struct {
	mu       sync.Mutex
	rooms    map[match.RoomID][]rec
	current  map[ids.SessionID]match.RoomID // session -> room of its last EventMatched
	errs     []string
	matched  atomic.Int64
	peerLeft atomic.Int64
}

func (p *pairChecker) Notify(s ids.SessionID, ev match.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch ev.Kind {
	case match.EventMatched:
		p.matched.Add(1)
		got := append(p.rooms[ev.Room], rec{s, ev})
		p.rooms[ev.Room] = got
		p.current[s] = ev.Room
		if ev.Common == nil || ev.Partner == s {
			p.errs = append(p.errs, fmt.Sprintf("%s: bad matched %+v", s, ev))
		}
		if len(got) == 2 {
			a, b := got[0], got[1]
			if a.Ev.Partner != b.Session || b.Ev.Partner != a.Session || a.Ev.Initiator == b.Ev.Initiator ||
				a.Ev.Mode != b.Ev.Mode || !reflect.DeepEqual(a.Ev.Common, b.Ev.Common) {
				p.errs = append(p.errs, fmt.Sprintf("room %s: inconsistent %v %v", ev.Room, a, b))
			}
		}
		if len(got) > 2 {
			p.errs = append(p.errs, fmt.Sprintf("room %s: %d sessions", ev.Room, len(got)))
		}
	case match.EventPeerLeft:
		p.peerLeft.Add(1)
		if p.current[s] != ev.Room {
			p.errs = append(p.errs, fmt.Sprintf("%s: peer_left for room %s, current %s", s, ev.Room, p.current[s]))
		}
		delete(p.current, s)
	}
}

// TestConcurrentRandomOps hammers one engine from many goroutines, with the
// fake clock moving and report blocks expiring, checking the invariants all
// along and at the end.
func TestConcurrentRandomOps(t *testing.T) {
	const (
		workers  = 8
		maxOps   = 40000 // per worker
		duration = time.Second
		nIDs     = 64
	)
	clk := clock.NewFake(t0)
	pc := &pairChecker{rooms: map[match.RoomID][]rec{}, current: map[ids.SessionID]match.RoomID{}}
	m := match.NewMemory(match.MemoryConfig{Clock: clk, InterestTimeout: 5 * time.Second,
		ReportBlock: 20 * time.Second, MaxWaiting: 40}, pc)
	defer m.Close()
	topics := []string{"a", "b", "c", "d", "e", "f"}
	deadline := time.Now().Add(duration)
	var stop atomic.Bool
	var wg sync.WaitGroup
	var checks atomic.Int64
	errc := make(chan error, workers+2)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 99))
			for i := 0; i < maxOps && !stop.Load(); i++ {
				if i%256 == 0 && time.Now().After(deadline) {
					return
				}
				id := ids.SessionID(fmt.Sprintf("s%d", rng.IntN(nIDs)))
				// Identities too: identity blocks under concurrency.
				p := match.Prefs{Mode: protocol.Modes[rng.IntN(2)], Identity: []identity.Hash{"", idA, idB, idC}[rng.IntN(4)]}
				for _, j := range rng.Perm(len(topics))[:rng.IntN(3)] {
					p.Interests = append(p.Interests, topics[j])
				}
				var err error
				switch k := rng.IntN(100); {
				case k < 30:
					err = m.Join(ctx, id, p)
					if errors.Is(err, match.ErrBadState) || errors.Is(err, match.ErrOverloaded) {
						err = nil
					}
				case k < 50:
					err = m.Next(ctx, id, p)
					if errors.Is(err, match.ErrOverloaded) {
						err = nil
					}
				case k < 62:
					err = m.Leave(ctx, id)
				case k < 68:
					if _, err = m.Report(ctx, id); errors.Is(err, match.ErrNotChatting) {
						err = nil
					}
				case k < 85:
					err = m.SetConnected(ctx, id, rng.IntN(3) > 0)
				case k < 90:
					err = m.End(ctx, id, match.ReasonDisconnected)
				default:
					_, err = m.State(ctx, id)
				}
				if err != nil {
					errc <- fmt.Errorf("worker %d: %w", w, err)
					stop.Store(true)
					return
				}
			}
		}()
	}
	wg.Add(2)
	go func() { // the clock: interest timeouts and block expiries fire concurrently
		defer wg.Done()
		for i := 0; i < 100000 && !stop.Load() && time.Now().Before(deadline); i++ {
			clk.Advance(time.Duration(i%7) * 100 * time.Millisecond)
		}
	}()
	go func() {
		defer wg.Done()
		for i := 0; i < 100000 && !stop.Load() && time.Now().Before(deadline); i++ {
			if err := m.CheckInvariants(); err != nil {
				errc <- err
				stop.Store(true)
				return
			}
			checks.Add(1)
		}
	}()
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	if err := m.CheckInvariants(); err != nil {
		t.Fatalf("final invariants: %v", err)
	}
	pc.mu.Lock()
	defer pc.mu.Unlock()
	for _, e := range pc.errs[:min(len(pc.errs), 10)] {
		t.Error(e)
	}
	st := m.Stats()
	t.Logf("stats %+v, %d matched events, %d peer_left, %d invariant checks", st, pc.matched.Load(), pc.peerLeft.Load(), checks.Load())
	if st.Matches < 100 {
		t.Fatalf("only %d matches: the test did not exercise matching", st.Matches)
	}
}
