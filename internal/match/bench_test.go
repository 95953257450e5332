package match_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strangerchat/stranger/internal/clock"
	"github.com/strangerchat/stranger/internal/identity"
	"github.com/strangerchat/stranger/internal/ids"
	"github.com/strangerchat/stranger/internal/match"
	"github.com/strangerchat/stranger/internal/protocol"
)

// countNotifier counts events, standing in for the signaling layer's
// per-session queues.
type countNotifier struct{ n atomic.Int64 }

func (c *countNotifier) Notify(ids.SessionID, match.Event) { c.n.Add(1) }

func sessionIDs(prefix string, n int) []ids.SessionID {
	sids := make([]ids.SessionID, n)
	for i := range sids {
		sids[i] = ids.SessionID(fmt.Sprintf("%s%06d", prefix, i))
	}
	return sids
}

func reportMatches(b *testing.B, m *match.Memory, before uint64) {
	b.Helper()
	got := m.Stats().Matches - before
	b.ReportMetric(float64(got)/float64(b.N), "matches/op")
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(got)/s, "matches/s")
	}
}

// pairsLoop makes one match per iteration: two idle sessions without
// interests join, then one leaves (its partner hears peer_left). Partners
// vary from one round to the next.
func pairsLoop(b *testing.B, m interface {
	Join(context.Context, ids.SessionID, match.Prefs) error
	Leave(context.Context, ids.SessionID) error
}, sids []ids.SessionID) {
	pairsLoopAs(b, m, sids, func(int) identity.Hash { return "" })
}

// pairsLoopAs is pairsLoop with session i of sids joining as person of(i).
func pairsLoopAs(b *testing.B, m interface {
	Join(context.Context, ids.SessionID, match.Prefs) error
	Leave(context.Context, ids.SessionID) error
}, sids []ids.SessionID, of func(int) identity.Hash) {
	n := len(sids)
	for k := 0; b.Loop(); k++ {
		i, j := k%n, (k+1+(k/n)%(n-1))%n
		x, y := sids[i], sids[j]
		if err := m.Join(ctx, x, match.Prefs{Mode: protocol.ModeVideo, Identity: of(i)}); err != nil {
			b.Fatal(err)
		}
		if err := m.Join(ctx, y, match.Prefs{Mode: protocol.ModeVideo, Identity: of(j)}); err != nil {
			b.Fatal(err)
		}
		if err := m.Leave(ctx, x); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPairsNoInterests: join + join + match + leave, no interests (the
// common case), default crypto/rand room ids, real clock.
func BenchmarkPairsNoInterests(b *testing.B) {
	m := match.NewMemory(match.MemoryConfig{Clock: clock.Real{}}, &countNotifier{})
	defer m.Close()
	b.ReportAllocs()
	pairsLoop(b, m, sessionIDs("s", 1024))
	reportMatches(b, m, 0)
}

// BenchmarkPairsParallel: the same from every P at once, each goroutine with
// its own sessions, all on one engine mutex.
func BenchmarkPairsParallel(b *testing.B) {
	m := match.NewMemory(match.MemoryConfig{Clock: clock.Real{}}, &countNotifier{})
	defer m.Close()
	var g atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		sids := sessionIDs(fmt.Sprintf("g%d-", g.Add(1)), 512)
		p := match.Prefs{Mode: protocol.ModeText}
		for k := 0; pb.Next(); k++ {
			// Another goroutine may take x or y first: count only what the
			// engine did (matches/s), not what this goroutine intended.
			x := sids[k%len(sids)]
			y := sids[(k+1+(k/len(sids))%(len(sids)-1))%len(sids)]
			_ = m.Join(ctx, x, p)
			_ = m.Join(ctx, y, p)
			_ = m.Leave(ctx, x)
			_ = m.Leave(ctx, y)
		}
	})
	reportMatches(b, m, 0)
}

// BenchmarkInterestMix: each iteration one session leaves whatever it is
// doing and joins again, with 0 to 3 of 20 popular interests; about half of
// the sessions have interests. Matches happen when interests meet (or after
// the 5 s timeout, in real time).
func BenchmarkInterestMix(b *testing.B) {
	m := match.NewMemory(match.MemoryConfig{Clock: clock.Real{}}, &countNotifier{})
	defer m.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	topics := make([]string, 20)
	for i := range topics {
		topics[i] = fmt.Sprintf("topic%d", i)
	}
	sids := sessionIDs("s", 4096)
	prefs := make([]match.Prefs, len(sids))
	for i := range prefs {
		prefs[i].Mode = protocol.Modes[rng.IntN(len(protocol.Modes))]
		// Popularity falls off: low-numbered topics are common.
		for range rng.IntN(4) {
			t := topics[min(rng.IntN(20), rng.IntN(20))]
			dup := false
			for _, x := range prefs[i].Interests {
				dup = dup || x == t
			}
			if !dup {
				prefs[i].Interests = append(prefs[i].Interests, t)
			}
		}
	}
	b.ReportAllocs()
	for k := 0; b.Loop(); k++ {
		i := k % len(sids)
		if err := m.Leave(ctx, sids[i]); err != nil {
			b.Fatal(err)
		}
		if err := m.Join(ctx, sids[i], prefs[i]); err != nil {
			b.Fatal(err)
		}
	}
	reportMatches(b, m, 0)
	st := m.Stats()
	b.ReportMetric(float64(st.Waiting[1]+st.Waiting[2]), "waiting")
}

// BenchmarkPairsLargeQueue: pairs without interests match while 10,000
// sessions with rare interests wait (their interest timeout far away). The
// cost must not depend on the queue's length.
func BenchmarkPairsLargeQueue(b *testing.B) {
	m := match.NewMemory(match.MemoryConfig{Clock: clock.Real{}, InterestTimeout: time.Hour}, &countNotifier{})
	defer m.Close()
	for i, id := range sessionIDs("rare", 10000) {
		p := match.Prefs{Mode: protocol.ModeVideo, Interests: []string{fmt.Sprintf("rare%d", i), fmt.Sprintf("odd%d", i)}}
		if err := m.Join(ctx, id, p); err != nil {
			b.Fatal(err)
		}
	}
	if w := m.Stats().Waiting[protocol.ModeVideo]; w != 10000 {
		b.Fatalf("%d waiting", w)
	}
	b.ReportAllocs()
	pairsLoop(b, m, sessionIDs("s", 1024))
	reportMatches(b, m, 0)
	if w := m.Stats().Waiting[protocol.ModeVideo]; w != 10000 {
		b.Fatalf("%d waiting after", w)
	}
}

// BenchmarkInterestJoinLargeQueue: sessions with two popular interests join
// and match while 10,000 sessions with rare interests wait.
func BenchmarkInterestJoinLargeQueue(b *testing.B) {
	m := match.NewMemory(match.MemoryConfig{Clock: clock.Real{}, InterestTimeout: time.Hour}, &countNotifier{})
	defer m.Close()
	for i, id := range sessionIDs("rare", 10000) {
		p := match.Prefs{Mode: protocol.ModeText, Interests: []string{fmt.Sprintf("rare%d", i)}}
		if err := m.Join(ctx, id, p); err != nil {
			b.Fatal(err)
		}
	}
	sids := sessionIDs("s", 1024)
	n := len(sids)
	p := match.Prefs{Mode: protocol.ModeText, Interests: []string{"music", "movies"}}
	b.ReportAllocs()
	for k := 0; b.Loop(); k++ {
		x := sids[k%n]
		y := sids[(k+1+(k/n)%(n-1))%n]
		if err := m.Join(ctx, x, p); err != nil {
			b.Fatal(err)
		}
		if err := m.Join(ctx, y, p); err != nil {
			b.Fatal(err)
		}
		if err := m.Leave(ctx, x); err != nil {
			b.Fatal(err)
		}
	}
	reportMatches(b, m, 0)
}
