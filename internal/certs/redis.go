package certs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/redis/go-redis/v9"
)

// RedisStorage keeps certmagic's files (ACME account, keys, certificates,
// challenge tokens) and locks in Redis, so nodes that share one Redis and
// one --tls-domain share one certificate and only one of them asks the CA.
//
// Keys, under Prefix:
//
//	f:<key>   a hash: v the value, m the time stored (Unix ms)
//	index     a sorted set of every stored key, all scored 0, so that a
//	          lexicographic range is a directory listing
//	lock:<n>  a lock: a random token, with an expiry the holder refreshes
type RedisStorage struct {
	rdb    redis.Cmdable
	prefix string
	ttl    time.Duration
	poll   time.Duration
	log    *slog.Logger

	mu   sync.Mutex
	held map[string]*heldLock // locks this value holds, by name
}

// RedisStorageOptions configure a RedisStorage.
type RedisStorageOptions struct {
	Client redis.Cmdable
	// Prefix starts every key (e.g. "st:cert:").
	Prefix string
	// LockTTL is how long a lock outlives a holder that stopped
	// refreshing it (a node that died); the holder refreshes it every
	// third of it. Default 30 s.
	LockTTL time.Duration
	// LockPoll is how often a waiting Lock tries again. Default 1 s.
	LockPoll time.Duration
	Log      *slog.Logger
}

type heldLock struct {
	token string
	stop  context.CancelFunc
	done  chan struct{}
}

var _ certmagic.Storage = (*RedisStorage)(nil)
var _ certmagic.TryLocker = (*RedisStorage)(nil)

// NewRedisStorage returns a certmagic.Storage over o.Client.
func NewRedisStorage(o RedisStorageOptions) (*RedisStorage, error) {
	if o.Client == nil {
		return nil, errors.New("certs: no redis client")
	}
	if o.Prefix == "" {
		return nil, errors.New("certs: no key prefix")
	}
	if o.LockTTL <= 0 {
		o.LockTTL = 30 * time.Second
	}
	if o.LockPoll <= 0 {
		o.LockPoll = time.Second
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &RedisStorage{rdb: o.Client, prefix: o.Prefix, ttl: o.LockTTL, poll: o.LockPoll,
		log: o.Log, held: map[string]*heldLock{}}, nil
}

func (s *RedisStorage) fileKey(key string) string { return s.prefix + "f:" + key }
func (s *RedisStorage) indexKey() string          { return s.prefix + "index" }
func (s *RedisStorage) lockKey(name string) string {
	return s.prefix + "lock:" + name
}

// under is the lexicographic range of the index holding the keys below dir
// ('/' + 1 is '0'); the whole index for the root.
func under(dir string) (lo, hi string) {
	if dir == "" {
		return "-", "+"
	}
	return "[" + dir + "/", "(" + dir + "0"
}

// Store puts value at key, and key in the index, at once.
func (s *RedisStorage) Store(ctx context.Context, key string, value []byte) error {
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, s.fileKey(key), "v", value, "m", time.Now().UnixMilli())
		p.ZAdd(ctx, s.indexKey(), redis.Z{Member: key})
		return nil
	})
	if err != nil {
		return fmt.Errorf("certs: store %s: %w", key, err)
	}
	return nil
}

// Load returns the value at key, or fs.ErrNotExist.
func (s *RedisStorage) Load(ctx context.Context, key string) ([]byte, error) {
	v, err := s.rdb.HGet(ctx, s.fileKey(key), "v").Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("certs: load %s: %w", key, fs.ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("certs: load %s: %w", key, err)
	}
	return v, nil
}

// deleteScript deletes the file KEYS[2] and every file below ARGV[2]..ARGV[3]
// (a range of the index KEYS[1]), in one step. ARGV[1] is the file key
// prefix and ARGV[4] the key itself. The file keys are built here from the
// index, which is why they are not all in KEYS; the deployment runs one
// Redis, not Redis Cluster.
var deleteScript = redis.NewScript(`
local below = redis.call('ZRANGEBYLEX', KEYS[1], ARGV[2], ARGV[3])
for _, k in ipairs(below) do redis.call('DEL', ARGV[1] .. k) end
if #below > 0 then redis.call('ZREMRANGEBYLEX', KEYS[1], ARGV[2], ARGV[3]) end
redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[1], ARGV[4])
return #below`)

// Delete deletes key and, when it is a directory, everything below it;
// a missing key is no error.
func (s *RedisStorage) Delete(ctx context.Context, key string) error {
	lo, hi := under(key)
	err := deleteScript.Run(ctx, s.rdb, []string{s.indexKey(), s.fileKey(key)}, s.prefix+"f:", lo, hi, key).Err()
	if err != nil {
		return fmt.Errorf("certs: delete %s: %w", key, err)
	}
	return nil
}

// Exists says whether key is a file or a directory.
func (s *RedisStorage) Exists(ctx context.Context, key string) bool {
	_, err := s.Stat(ctx, key)
	return err == nil
}

// below lists the stored keys under dir.
func (s *RedisStorage) below(ctx context.Context, dir string, limit int64) ([]string, error) {
	lo, hi := under(dir)
	return s.rdb.ZRangeArgs(ctx, redis.ZRangeArgs{Key: s.indexKey(), Start: lo, Stop: hi, ByLex: true, Count: limit}).Result()
}

// Stat describes key: a file (size and time stored), a directory (a
// prefix of files; no size or time), or fs.ErrNotExist.
func (s *RedisStorage) Stat(ctx context.Context, key string) (certmagic.KeyInfo, error) {
	var size *redis.IntCmd
	var modified *redis.StringCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		size = p.HStrLen(ctx, s.fileKey(key), "v")
		modified = p.HGet(ctx, s.fileKey(key), "m")
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return certmagic.KeyInfo{}, fmt.Errorf("certs: stat %s: %w", key, err)
	}
	if ms, err := modified.Int64(); err == nil {
		return certmagic.KeyInfo{Key: key, Modified: time.UnixMilli(ms), Size: size.Val(), IsTerminal: true}, nil
	}
	keys, err := s.below(ctx, key, 1)
	if err != nil {
		return certmagic.KeyInfo{}, fmt.Errorf("certs: stat %s: %w", key, err)
	}
	if len(keys) == 0 {
		return certmagic.KeyInfo{}, fmt.Errorf("certs: stat %s: %w", key, fs.ErrNotExist)
	}
	return certmagic.KeyInfo{Key: key, IsTerminal: false}, nil
}

// List returns the keys below dir, as FileStorage does: with recursive,
// every file and directory at any depth; without, the files and
// directories directly in dir. Both in lexical order, with dir as their
// prefix. A dir that is neither file nor directory is fs.ErrNotExist; a
// file has nothing below it.
func (s *RedisStorage) List(ctx context.Context, dir string, recursive bool) ([]string, error) {
	keys, err := s.below(ctx, dir, 0)
	if err != nil {
		return nil, fmt.Errorf("certs: list %s: %w", dir, err)
	}
	if len(keys) == 0 {
		if _, err := s.Stat(ctx, dir); err != nil {
			return nil, err
		}
		return nil, nil
	}
	start := 0
	if dir != "" {
		start = len(dir) + 1
	}
	seen := map[string]bool{}
	var out []string
	add := func(k string) {
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	for _, k := range keys {
		rest := k[start:]
		if !recursive {
			if i := strings.IndexByte(rest, '/'); i >= 0 {
				add(k[:start+i])
			} else {
				add(k)
			}
			continue
		}
		// Every directory on the way down, then the file.
		for i := 0; i < len(rest); i++ {
			if rest[i] == '/' {
				add(k[:start+i])
			}
		}
		add(k)
	}
	slices.Sort(out)
	return out, nil
}

// The lock scripts act only when the lock still holds the caller's token,
// so a holder whose lock expired and was taken by another node neither
// extends nor releases the new holder's lock.
var (
	refreshScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`)
	unlockScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`)
)

// Lock takes the named lock, waiting (until ctx ends) while another holds
// it. The lock expires LockTTL after its holder last refreshed it; this
// value refreshes it until Unlock.
func (s *RedisStorage) Lock(ctx context.Context, name string) error {
	for {
		ok, err := s.TryLock(ctx, name)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		t := time.NewTimer(s.poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("certs: lock %s: %w", name, context.Cause(ctx))
		case <-t.C:
		}
	}
}

// TryLock takes the named lock if no one holds it, without waiting.
func (s *RedisStorage) TryLock(ctx context.Context, name string) (bool, error) {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	token := hex.EncodeToString(b)
	ok, err := s.rdb.SetNX(ctx, s.lockKey(name), token, s.ttl).Result()
	if err != nil {
		return false, fmt.Errorf("certs: lock %s: %w", name, err)
	}
	if !ok {
		return false, nil
	}
	rctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	h := &heldLock{token: token, stop: stop, done: make(chan struct{})}
	s.mu.Lock()
	s.held[name] = h
	s.mu.Unlock()
	go s.refresh(rctx, name, h)
	return true, nil
}

// refresh extends the lock every third of its TTL while it is held. A
// refresh that fails for a moment (Redis away) is tried again at the next
// tick; one that finds the lock taken by another stops, and Unlock says so.
func (s *RedisStorage) refresh(ctx context.Context, name string, h *heldLock) {
	defer close(h.done)
	t := time.NewTicker(s.ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := refreshScript.Run(ctx, s.rdb, []string{s.lockKey(name)}, h.token, s.ttl.Milliseconds()).Int()
		switch {
		case err != nil && ctx.Err() == nil:
			s.log.Warn("certificate lock not refreshed", "lock", name, "err", err)
		case err == nil && n == 0:
			s.log.Error("certificate lock lost: it expired before it was refreshed", "lock", name)
			return
		}
	}
}

// Unlock releases a lock taken by Lock or TryLock of this value.
func (s *RedisStorage) Unlock(ctx context.Context, name string) error {
	s.mu.Lock()
	h := s.held[name]
	delete(s.held, name)
	s.mu.Unlock()
	if h == nil {
		return fmt.Errorf("certs: unlock %s: not held here", name)
	}
	h.stop()
	<-h.done
	n, err := unlockScript.Run(ctx, s.rdb, []string{s.lockKey(name)}, h.token).Int()
	if err != nil {
		return fmt.Errorf("certs: unlock %s: %w", name, err)
	}
	if n == 0 {
		return fmt.Errorf("certs: unlock %s: the lock had expired (held longer than its TTL without refresh)", name)
	}
	return nil
}

// String names the storage in certmagic's logs.
func (s *RedisStorage) String() string { return "redis:" + s.prefix }
