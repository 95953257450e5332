package certs

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/strangerchat/stranger/internal/certs/pebbletest"
	"github.com/strangerchat/stranger/internal/redistest"
)

// newRedisStorage is a RedisStorage on its own client (a node of its own)
// of the Redis at url.
func newRedisStorage(t *testing.T, url string, o RedisStorageOptions) *RedisStorage {
	t.Helper()
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { _ = rdb.Close() })
	o.Client = rdb
	if o.Prefix == "" {
		o.Prefix = "st:cert:"
	}
	s, err := NewRedisStorage(o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestRedisStorageFiles checks every file method against the semantics
// certmagic documents and its FileStorage has.
func TestRedisStorageFiles(t *testing.T) {
	url, _ := redistest.Start(t)
	s := newRedisStorage(t, url, RedisStorageOptions{})
	ctx := context.Background()

	if _, err := s.Load(ctx, "acme/a/b.crt"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load of a missing key: %v, want fs.ErrNotExist", err)
	}
	if _, err := s.Stat(ctx, "acme"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Stat of a missing key: %v, want fs.ErrNotExist", err)
	}
	if _, err := s.List(ctx, "acme", true); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("List of a missing key: %v, want fs.ErrNotExist", err)
	}
	if s.Exists(ctx, "acme") {
		t.Fatal("Exists of a missing key")
	}
	if err := s.Delete(ctx, "acme/nothing"); err != nil {
		t.Fatalf("Delete of a missing key: %v", err)
	}

	files := map[string]string{
		"acme/ca/sites/chat.example.org/chat.example.org.crt": "CERT",
		"acme/ca/sites/chat.example.org/chat.example.org.key": "KEY",
		"acme/ca/users/ops/ops.json":                          "{}",
		"acme/ca/users/ops/ops.key":                           "ACCOUNT KEY",
		"acme/top":                                            "file at depth two",
		"acmex/other":                                         "shares a string prefix, not a path prefix",
		"root":                                                "at the root",
	}
	before := time.Now().Add(-time.Second)
	for k, v := range files {
		if err := s.Store(ctx, k, []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	for k, v := range files {
		got, err := s.Load(ctx, k)
		if err != nil || string(got) != v {
			t.Fatalf("Load(%s) = %q, %v; want %q", k, got, err, v)
		}
		info, err := s.Stat(ctx, k)
		if err != nil || info.Key != k || !info.IsTerminal || info.Size != int64(len(v)) ||
			info.Modified.Before(before) || info.Modified.After(time.Now().Add(time.Second)) {
			t.Fatalf("Stat(%s) = %+v, %v", k, info, err)
		}
		if !s.Exists(ctx, k) {
			t.Fatalf("Exists(%s) false", k)
		}
	}
	// Store overwrites.
	if err := s.Store(ctx, "acme/top", []byte("new")); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Load(ctx, "acme/top"); string(got) != "new" {
		t.Fatalf("after overwrite Load = %q", got)
	}

	// Directories exist, are not terminal, and cannot be loaded.
	for _, dir := range []string{"acme", "acme/ca", "acme/ca/sites/chat.example.org"} {
		info, err := s.Stat(ctx, dir)
		if err != nil || info.IsTerminal || info.Key != dir {
			t.Fatalf("Stat(%s) = %+v, %v; want a directory", dir, info, err)
		}
		if !s.Exists(ctx, dir) {
			t.Fatalf("Exists(%s) false", dir)
		}
		if _, err := s.Load(ctx, dir); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("Load(%s) of a directory: %v", dir, err)
		}
	}
	// A string prefix is not a path prefix.
	if s.Exists(ctx, "acme/c") || s.Exists(ctx, "acm") {
		t.Fatal("Exists of a partial path component")
	}

	list := func(dir string, recursive bool, want ...string) {
		t.Helper()
		got, err := s.List(ctx, dir, recursive)
		if err != nil || !slices.Equal(got, want) {
			t.Fatalf("List(%q, %v) = %q, %v; want %q", dir, recursive, got, err, want)
		}
	}
	list("acme", false, "acme/ca", "acme/top")
	list("acme/ca", false, "acme/ca/sites", "acme/ca/users")
	list("acme/ca", true,
		"acme/ca/sites",
		"acme/ca/sites/chat.example.org",
		"acme/ca/sites/chat.example.org/chat.example.org.crt",
		"acme/ca/sites/chat.example.org/chat.example.org.key",
		"acme/ca/users",
		"acme/ca/users/ops",
		"acme/ca/users/ops/ops.json",
		"acme/ca/users/ops/ops.key")
	list("", false, "acme", "acmex", "root")
	list("acme/top", true) // a file: nothing below it

	// Deleting a file leaves its siblings; deleting a directory takes
	// everything below it, and nothing beside it.
	if err := s.Delete(ctx, "acme/ca/users/ops/ops.key"); err != nil {
		t.Fatal(err)
	}
	list("acme/ca/users/ops", false, "acme/ca/users/ops/ops.json")
	if err := s.Delete(ctx, "acme/ca"); err != nil {
		t.Fatal(err)
	}
	for k := range files {
		_, err := s.Load(ctx, k)
		gone := errors.Is(err, fs.ErrNotExist)
		if want := len(k) > len("acme/ca/") && k[:len("acme/ca/")] == "acme/ca/"; gone != want {
			t.Errorf("after Delete(acme/ca): %s gone %v, want %v (err %v)", k, gone, want, err)
		}
	}
	if s.Exists(ctx, "acme/ca") || s.Exists(ctx, "acme/ca/sites") {
		t.Fatal("a deleted directory still exists")
	}
	list("acme", true, "acme/top")
	list("", true, "acme", "acme/top", "acmex", "acmex/other", "root")

	// A second value over the same Redis and prefix (another node) sees the
	// same files; another prefix (another deployment) sees none.
	other := newRedisStorage(t, url, RedisStorageOptions{})
	if got, err := other.Load(ctx, "root"); err != nil || string(got) != "at the root" {
		t.Fatalf("another node's Load = %q, %v", got, err)
	}
	elsewhere := newRedisStorage(t, url, RedisStorageOptions{Prefix: "other:cert:"})
	if elsewhere.Exists(ctx, "root") {
		t.Fatal("another prefix sees this deployment's files")
	}
}

// TestRedisStorageLock checks that the lock is one across nodes, waits,
// outlives its TTL while held, expires when its holder vanished, and ends
// its wait with the context.
func TestRedisStorageLock(t *testing.T) {
	url, _ := redistest.Start(t)
	opts := RedisStorageOptions{LockTTL: 300 * time.Millisecond, LockPoll: 20 * time.Millisecond}
	a := newRedisStorage(t, url, opts)
	b := newRedisStorage(t, url, opts)
	ctx := context.Background()

	t.Run("the second waits until the first unlocks", func(t *testing.T) {
		if err := a.Lock(ctx, "issue_cert_chat.example.org"); err != nil {
			t.Fatal(err)
		}
		if ok, err := b.TryLock(ctx, "issue_cert_chat.example.org"); ok || err != nil {
			t.Fatalf("TryLock of a held lock = %v, %v", ok, err)
		}
		if ok, err := b.TryLock(ctx, "another"); !ok || err != nil {
			t.Fatalf("TryLock of another name = %v, %v", ok, err)
		}
		if err := b.Unlock(ctx, "another"); err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		var released bool
		got := make(chan error, 1)
		go func() {
			err := b.Lock(ctx, "issue_cert_chat.example.org")
			mu.Lock()
			if err == nil && !released {
				err = errors.New("taken while the first still held it")
			}
			mu.Unlock()
			got <- err
		}()
		// Three TTLs: the holder's refresh must keep it.
		time.Sleep(3 * opts.LockTTL)
		select {
		case err := <-got:
			t.Fatalf("second Lock returned while the first held it: %v", err)
		default:
		}
		mu.Lock()
		released = true
		mu.Unlock()
		if err := a.Unlock(ctx, "issue_cert_chat.example.org"); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-got:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("second Lock still waiting after Unlock")
		}
		if err := b.Unlock(ctx, "issue_cert_chat.example.org"); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("a vanished holder's lock expires", func(t *testing.T) {
		// What a node that died holding the lock leaves: its token, no
		// one refreshing it.
		raw := redis.NewClient(mustParse(t, url))
		defer raw.Close()
		if err := raw.Set(ctx, "st:cert:lock:dead", "token of a dead node", opts.LockTTL).Err(); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if err := a.Lock(lctx, "dead"); err != nil {
			t.Fatal(err)
		}
		if waited := time.Since(start); waited < opts.LockTTL/2 {
			t.Fatalf("took a held lock after %v", waited)
		}
		if v, _ := raw.Get(ctx, "st:cert:lock:dead").Result(); v == "token of a dead node" {
			t.Fatal("the dead node's token is still there")
		}
		if err := a.Unlock(ctx, "dead"); err != nil {
			t.Fatal(err)
		}
		if n, _ := raw.Exists(ctx, "st:cert:lock:dead").Result(); n != 0 {
			t.Fatal("Unlock left the lock key")
		}
	})

	t.Run("the context ends the wait", func(t *testing.T) {
		if err := a.Lock(ctx, "held"); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = a.Unlock(ctx, "held") }()
		lctx, cancel := context.WithCancel(ctx)
		got := make(chan error, 1)
		go func() { got <- b.Lock(lctx, "held") }()
		time.Sleep(100 * time.Millisecond)
		cancel()
		select {
		case err := <-got:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Lock after cancel = %v, want context.Canceled", err)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("Lock still waiting after its context ended")
		}
	})

	t.Run("unlock of a lock not held", func(t *testing.T) {
		if err := a.Unlock(ctx, "never"); err == nil {
			t.Fatal("Unlock of a lock never taken succeeded")
		}
	})
}

func mustParse(t *testing.T, url string) *redis.Options {
	t.Helper()
	o, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// TestTwoNodesShareOneCertificate runs two nodes on one Redis with the same
// domain: one order reaches the CA, and both serve the certificate. Pebble
// validates on the first node's HTTP port only, so when the second node
// wins the lock, the first answers the challenge from the shared storage.
func TestTwoNodesShareOneCertificate(t *testing.T) {
	const domain = "chat.stranger.test"
	url, _ := redistest.Start(t)
	type node struct {
		acme     *ACME
		httpLn   net.Listener
		tlsLn    net.Listener
		httpPort int
	}
	var nodes [2]node
	for i := range nodes {
		var err error
		if nodes[i].httpLn, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if nodes[i].tlsLn, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		nodes[i].httpPort = nodes[i].httpLn.Addr().(*net.TCPAddr).Port
	}
	pebble := pebbletest.Start(t, nodes[0].httpPort, closedPort(t))
	log := slog.New(slog.NewTextHandler(testLog{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	for i := range nodes {
		n := &nodes[i]
		a, err := NewACME(ACMEConfig{
			Domains: []string{domain}, CA: pebble.Directory, Roots: pebble.ServerRoots,
			Email:    "ops@stranger.test",
			Storage:  newRedisStorage(t, url, RedisStorageOptions{Log: log}),
			HTTPPort: n.httpPort, TLSPort: n.tlsLn.Addr().(*net.TCPAddr).Port,
			Log: log,
		})
		if err != nil {
			t.Fatal(err)
		}
		n.acme = a
		t.Cleanup(a.Stop)
		hs := &http.Server{Handler: a.HTTPHandler(http.NotFoundHandler()), ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = hs.Serve(n.httpLn) }()
		t.Cleanup(func() { _ = hs.Close() })
		body := "node " + strconv.Itoa(i)
		ts := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, body) }),
			ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = ts.Serve(tls.NewListener(n.tlsLn, a.TLSConfig("http/1.1"))) }()
		t.Cleanup(func() { _ = ts.Close() })
	}

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	for i := range nodes {
		if err := nodes[i].acme.Manage(ctx); err != nil {
			t.Fatal(err)
		}
	}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pebble.IssuedRoots(), ServerName: domain},
	}}
	var serials [2]string
	for i := range nodes {
		url := "https://" + nodes[i].tlsLn.Addr().String() + "/"
		want := "node " + strconv.Itoa(i)
		var lastErr error
		for {
			resp, err := client.Get(url)
			if err == nil {
				b, _ := io.ReadAll(resp.Body)
				_ = resp.Body.Close()
				if string(b) != want {
					t.Fatalf("node %d answered %q", i, b)
				}
				serials[i] = resp.TLS.PeerCertificates[0].SerialNumber.String()
				break
			}
			lastErr = err
			if ctx.Err() != nil {
				t.Fatalf("node %d serves no certificate from Pebble: %v", i, lastErr)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	if serials[0] != serials[1] {
		t.Errorf("the nodes serve different certificates (serials %s, %s)", serials[0], serials[1])
	}
	if n := pebble.Finalized(); n != 1 {
		t.Errorf("Pebble issued %d certificates, want 1: the nodes did not share one", n)
	}
}
