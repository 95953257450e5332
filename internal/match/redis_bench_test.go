package match_test

import (
	"bufio"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/strangerchat/stranger/internal/clock"
	"github.com/strangerchat/stranger/internal/identity"
	"github.com/strangerchat/stranger/internal/ids"
	"github.com/strangerchat/stranger/internal/match"
	"github.com/strangerchat/stranger/internal/protocol"
)

// commandStats reads INFO commandstats: calls per command, and the total.
func commandStats(b *testing.B, rdb *redis.Client) (map[string]int64, int64) {
	b.Helper()
	info, err := rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	out := map[string]int64{}
	var total int64
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		line := sc.Text()
		name, rest, ok := strings.Cut(strings.TrimPrefix(line, "cmdstat_"), ":calls=")
		if !ok || !strings.HasPrefix(line, "cmdstat_") {
			continue
		}
		n, _ := strconv.ParseInt(strings.SplitN(rest, ",", 2)[0], 10, 64)
		out[name] = n
		total += n
	}
	return out, total
}

// benchRedis runs body on nodes engines sharing one Redis and reports
// matches/s, the round trips per match counted by the engines (each
// command or script call is one), and the Redis commands per match from
// INFO commandstats (the work inside the scripts included).
func benchRedis(b *testing.B, nodes int, body func(b *testing.B, engs []*match.Redis)) {
	benchRedisSetup(b, nodes, nil, body)
}

// benchRedisSetup is benchRedis with a setup outside the counts.
func benchRedisSetup(b *testing.B, nodes int, setup, body func(b *testing.B, engs []*match.Redis)) {
	prefix := newPrefix()
	var engs []*match.Redis
	for range nodes {
		tn := startNode(b, nodeOpts{prefix: prefix, n: &countNotifier{},
			cfg: match.RedisConfig{Clock: clock.Real{}, InterestTimeout: time.Hour}})
		engs = append(engs, tn.eng)
	}
	if setup != nil {
		setup(b, engs)
	}
	rdb := newClient(redisAddr)
	defer rdb.Close()
	before, beforeTotal := commandStats(b, rdb)
	var trips0 uint64
	for _, e := range engs {
		trips0 += e.RoundTrips()
	}
	m0 := engs[0].Stats().Matches
	b.ResetTimer()
	body(b, engs)
	b.StopTimer()
	matches := engs[0].Stats().Matches - m0
	var trips uint64
	for _, e := range engs {
		trips += e.RoundTrips()
	}
	trips -= trips0 + 1 // the Stats call above
	after, afterTotal := commandStats(b, rdb)
	if matches == 0 {
		b.Fatal("no matches")
	}
	b.ReportMetric(float64(matches)/b.Elapsed().Seconds(), "matches/s")
	b.ReportMetric(float64(trips)/float64(matches), "trips/match")
	// INFO itself, the Stats HGETALL and the heartbeats are in the totals:
	// small against b.N matches.
	b.ReportMetric(float64(afterTotal-beforeTotal)/float64(matches), "cmds/match")
	b.ReportMetric(float64(after["evalsha"]-before["evalsha"])/float64(matches), "scripts/match")
	b.ReportMetric(float64(after["publish"]-before["publish"])/float64(matches), "publish/match")
	if info, err := rdb.Info(ctx, "commandstats").Result(); err == nil {
		for _, l := range strings.Split(info, "\n") {
			if strings.HasPrefix(l, "cmdstat_evalsha:") {
				// usec_per_call: Redis's own time per script (its one thread).
				if _, v, ok := strings.Cut(l, "usec_per_call="); ok {
					f, _ := strconv.ParseFloat(strings.SplitN(v, ",", 2)[0], 64)
					b.ReportMetric(f, "redis-µs/script")
				}
			}
		}
	}
}

// BenchmarkRedisPairs: one match per iteration, as BenchmarkPairsNoInterests
// does for the in-memory engine: two idle sessions join (the second matches
// the first), one leaves (its partner hears peer_left). One goroutine, so
// this is the latency-bound rate of one caller.
func BenchmarkRedisPairs(b *testing.B) {
	benchRedis(b, 1, func(b *testing.B, engs []*match.Redis) {
		pairsLoop(b, engs[0], sessionIDs("s", 1024))
	})
}

// BenchmarkRedisPairsIdentities: BenchmarkRedisPairs with an identity per
// session, as in production (the identity index and the identity-block
// marker cost their commands); with "reported", every identity has an
// identity block with someone outside the loop, so every candidate a scan
// looks at is checked for an identity pair too.
func BenchmarkRedisPairsIdentities(b *testing.B) {
	sids := sessionIDs("s", 1024)
	of := func(i int) identity.Hash { return identity.Hash(fmt.Sprintf("%016x", i)) }
	b.Run("none-reported", func(b *testing.B) {
		benchRedis(b, 1, func(b *testing.B, engs []*match.Redis) { pairsLoopAs(b, engs[0], sids, of) })
	})
	b.Run("all-reported", func(b *testing.B) {
		benchRedisSetup(b, 1, func(b *testing.B, engs []*match.Redis) {
			for i := range sids {
				x, y := ids.SessionID(fmt.Sprint("rx", i)), ids.SessionID(fmt.Sprint("ry", i))
				for _, j := range []struct {
					id ids.SessionID
					ih identity.Hash
				}{{x, of(i)}, {y, identity.Hash(fmt.Sprintf("f%015x", i))}} {
					if err := engs[0].Join(ctx, j.id, match.Prefs{Mode: protocol.ModeText, Identity: j.ih}); err != nil {
						b.Fatal(err)
					}
				}
				if _, err := engs[0].Report(ctx, x); err != nil {
					b.Fatal(err)
				}
			}
		}, func(b *testing.B, engs []*match.Redis) { pairsLoopAs(b, engs[0], sids, of) })
	})
}

// pairsParallel: every goroutine makes matches among its own sessions, on
// the engine of its turn (so with several nodes, partners are often on
// different nodes... of the same goroutine's choosing).
func pairsParallel(b *testing.B, engs []*match.Redis) {
	var g atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		w := int(g.Add(1))
		ids := sessionIDs(fmt.Sprintf("g%d-", w), 256)
		n := len(ids)
		p := match.Prefs{Mode: protocol.Modes[w%2]}
		for k := 0; pb.Next(); k++ {
			x := ids[k%n]
			y := ids[(k+1+(k/n)%(n-1))%n]
			// Another goroutine may take x or y first: count only what
			// the engine did.
			_ = engs[k%len(engs)].Join(ctx, x, p)
			_ = engs[(k+1)%len(engs)].Join(ctx, y, p)
			_ = engs[k%len(engs)].Leave(ctx, x)
			_ = engs[(k+1)%len(engs)].Leave(ctx, y)
		}
	})
}

// BenchmarkRedisPairsParallel: many callers on one node.
func BenchmarkRedisPairsParallel(b *testing.B) {
	b.SetParallelism(16)
	benchRedis(b, 1, pairsParallel)
}

// BenchmarkRedisPairsThreeNodes: many callers on three nodes (engines with
// their own connections and channels) sharing one Redis; partners are on
// different nodes.
func BenchmarkRedisPairsThreeNodes(b *testing.B) {
	b.SetParallelism(16)
	benchRedis(b, 3, pairsParallel)
}

// BenchmarkRedisPairsLargeQueue: BenchmarkRedisPairs while 5,000 sessions
// with rare interests wait: a script's cost does not depend on the queue's
// length (it looks at a few queue heads).
func BenchmarkRedisPairsLargeQueue(b *testing.B) {
	benchRedisSetup(b, 1, func(b *testing.B, engs []*match.Redis) {
		for i, id := range sessionIDs("rare", 5000) {
			p := match.Prefs{Mode: protocol.ModeVideo, Interests: []string{fmt.Sprintf("rare%d", i), fmt.Sprintf("odd%d", i)}}
			if err := engs[0].Join(ctx, id, p); err != nil {
				b.Fatal(err)
			}
		}
	}, func(b *testing.B, engs []*match.Redis) {
		pairsLoop(b, engs[0], sessionIDs("s", 1024))
	})
}
