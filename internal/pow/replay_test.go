package pow

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/strangerchat/stranger/internal/redistest"
)

func TestMemoryReplay(t *testing.T) {
	m := NewMemoryReplay(3)
	ctx := context.Background()
	later := time.Hour
	if ok, err := m.Use(ctx, "a", later); !ok || err != nil {
		t.Fatalf("first use: %v %v", ok, err)
	}
	if ok, err := m.Use(ctx, "a", later); ok || err != nil {
		t.Fatalf("second use: %v %v, want refused", ok, err)
	}
	// Expired entries make room; unexpired ones never are forgotten.
	if ok, _ := m.Use(ctx, "old", -time.Second); !ok {
		t.Fatal("old")
	}
	if ok, _ := m.Use(ctx, "b", later); !ok {
		t.Fatal("b")
	}
	if ok, err := m.Use(ctx, "c", later); !ok || err != nil {
		t.Fatalf("c after the expired one is swept: %v %v", ok, err)
	}
	if ok, err := m.Use(ctx, "d", later); ok || !errors.Is(err, ErrReplayFull) {
		t.Fatalf("d: %v %v, want ErrReplayFull", ok, err)
	}
	if ok, _ := m.Use(ctx, "a", later); ok {
		t.Fatal("a forgotten while full")
	}
}

// One solution, two nodes (two verifiers sharing a key and a real Redis):
// the first node accepts it, the second refuses it as used, also when both
// try at the same moment.
func TestRedisReplayAcrossNodes(t *testing.T) {
	url, _ := redistest.Start(t)
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	nodes := make([]*Verifier, 2)
	for i := range nodes {
		rdb := redis.NewClient(opt)
		t.Cleanup(func() { _ = rdb.Close() })
		nodes[i], err = New(Options{Key: []byte("shared-deployment-key"), MaxNumber: 500, Replay: NewRedisReplay(rdb, "")})
		if err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	now := time.Now()
	c, _ := nodes[0].Challenge(now)
	p, _, err := Solve(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if err := nodes[0].Verify(ctx, p, now); err != nil {
		t.Fatalf("node 0: %v", err)
	}
	if err := nodes[1].Verify(ctx, p, now); !errors.Is(err, ErrUsed) {
		t.Fatalf("node 1: %v, want ErrUsed", err)
	}

	// The key expires with the challenge.
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	ttl, err := rdb.PTTL(ctx, "pow:"+c.Challenge).Result()
	if err != nil || ttl <= DefaultTTL-time.Minute || ttl > DefaultTTL {
		t.Fatalf("key TTL %v (%v), want about %v", ttl, err, DefaultTTL)
	}

	// A race: 20 attempts at once over both nodes, exactly one wins.
	for round := 0; round < 5; round++ {
		c, _ := nodes[1].Challenge(now)
		p, _, _ := Solve(ctx, c)
		var wins, used atomic.Int32
		var wg sync.WaitGroup
		for i := 0; i < 20; i++ {
			wg.Go(func() {
				switch err := nodes[i%2].Verify(ctx, p, now); {
				case err == nil:
					wins.Add(1)
				case errors.Is(err, ErrUsed):
					used.Add(1)
				default:
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if wins.Load() != 1 || used.Load() != 19 {
			t.Fatalf("round %d: %d accepted, %d refused as used; want 1 and 19", round, wins.Load(), used.Load())
		}
	}
}

// With Redis unreachable Verify fails with the store's error, not as a
// refusal of the solution, and accepts nothing.
func TestRedisReplayDown(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer rdb.Close()
	v, _ := New(Options{Key: []byte("shared-deployment-key"), MaxNumber: 50, Replay: NewRedisReplay(rdb, "")})
	now := time.Now()
	c, _ := v.Challenge(now)
	p, _, _ := Solve(context.Background(), c)
	err := v.Verify(context.Background(), p, now)
	if err == nil || Reason(err) != "error" {
		t.Fatalf("Verify with Redis down: %v (%s), want a store error", err, Reason(err))
	}
}

// The replay key's lifetime follows the verifier's clock, not the Redis
// host's: a verifier on a fake clock far in the past still finds reuse.
func TestRedisReplayFakeClock(t *testing.T) {
	url, _ := redistest.Start(t)
	opt, _ := redis.ParseURL(url)
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	v, _ := New(Options{Key: []byte("shared-deployment-key"), MaxNumber: 50, Replay: NewRedisReplay(rdb, "")})
	past := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
	c, _ := v.Challenge(past)
	p, _, _ := Solve(context.Background(), c)
	if err := v.Verify(context.Background(), p, past); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	if err := v.Verify(context.Background(), p, past.Add(time.Second)); !errors.Is(err, ErrUsed) {
		t.Fatalf("reuse on a fake clock: %v, want ErrUsed", err)
	}
}
