package pow

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// MemoryReplay is the replay store of a single node. It holds each used
// challenge until its expiry, at most Max of them at once.
type MemoryReplay struct {
	max int

	mu        sync.Mutex
	used      map[string]time.Time // challenge -> expiry
	nextSweep int
}

// ErrReplayFull: the memory store holds Max unexpired solutions. Refusing
// is the honest answer: forgetting one would let it be used again.
var ErrReplayFull = errors.New("pow: replay store full")

// NewMemoryReplay returns a store for at most max used solutions at once
// (0: 1<<20, about 150 MB at most; a node issuing that many challenges
// within their TTL has other trouble).
func NewMemoryReplay(max int) *MemoryReplay {
	if max <= 0 {
		max = 1 << 20
	}
	return &MemoryReplay{max: max, used: map[string]time.Time{}, nextSweep: 1024}
}

// Use implements Replay. Expired entries are swept when the map has grown
// to twice its size after the last sweep, so a sweep costs O(1) per Use
// amortised.
func (m *MemoryReplay) Use(_ context.Context, key string, ttl time.Duration) (bool, error) {
	now := time.Now()
	until := now.Add(ttl)
	m.mu.Lock()
	defer m.mu.Unlock()
	if exp, ok := m.used[key]; ok && now.Before(exp) {
		return false, nil
	}
	if len(m.used) >= m.nextSweep || len(m.used) >= m.max {
		for k, exp := range m.used {
			if !now.Before(exp) {
				delete(m.used, k)
			}
		}
		m.nextSweep = max(1024, 2*len(m.used))
	}
	if len(m.used) >= m.max {
		return false, ErrReplayFull
	}
	m.used[key] = until
	return true, nil
}

// Len is the number of solutions held (expired ones not yet swept included).
func (m *MemoryReplay) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.used)
}

// setNX is the one Redis command RedisReplay needs; *redis.Client,
// *redis.ClusterClient and redis.UniversalClient have it.
type setNX interface {
	SetNX(ctx context.Context, key string, value any, expiration time.Duration) *redis.BoolCmd
}

// RedisReplay is the replay store of a deployment: one Redis that every
// node uses, so a solution used on one node is refused on all of them.
type RedisReplay struct {
	rdb    setNX
	prefix string
}

// NewRedisReplay stores used solutions as keys prefix+challenge (prefix:
// "pow:" if empty).
func NewRedisReplay(rdb setNX, prefix string) *RedisReplay {
	if prefix == "" {
		prefix = "pow:"
	}
	return &RedisReplay{rdb: rdb, prefix: prefix}
}

// Use implements Replay with SET key 1 NX PX ttl: atomic on the server, so
// two nodes racing with the same solution cannot both win, and the key
// expires with the challenge.
func (r *RedisReplay) Use(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	if ttl < time.Millisecond {
		ttl = time.Millisecond // PX needs a positive time; Verify refused expired ones
	}
	return r.rdb.SetNX(ctx, r.prefix+key, 1, ttl).Result()
}
