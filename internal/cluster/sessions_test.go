package cluster

import (
	"context"
	"testing"

	"github.com/strangerchat/stranger/internal/redistest"
)

func TestSessionRecords(t *testing.T) {
	srv := redistest.StartServer(t)
	rdb, err := NewClient(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	ctx := context.Background()
	r := SessionRecords{Client: rdb}
	key := SessionKey(DefaultPrefix, "s_live")
	if err := rdb.HSet(ctx, key, "st", 2, "nd", "n1").Err(); err != nil {
		t.Fatal(err)
	}
	if ok, err := r.Chatting(ctx, "s_live"); !ok || err != nil {
		t.Fatalf("Chatting(chatting) = %v, %v", ok, err)
	}
	if ok, err := (SessionRecords{Client: rdb, Prefix: "other:"}).Chatting(ctx, "s_live"); ok || err != nil {
		t.Fatalf("Chatting under another prefix = %v, %v", ok, err)
	}
	rdb.HSet(ctx, key, "st", 0) // the chat ended; the session goes on
	if ok, err := r.Chatting(ctx, "s_live"); ok || err != nil {
		t.Fatalf("Chatting(idle) = %v, %v", ok, err)
	}
	rdb.Del(ctx, key)
	if ok, err := r.Chatting(ctx, "s_live"); ok || err != nil {
		t.Fatalf("Chatting(ended) = %v, %v", ok, err)
	}
	srv.Stop()
	if _, err := r.Chatting(ctx, "s_live"); err == nil {
		t.Fatal("Chatting with Redis away: no error")
	}
}

// BenchmarkSessionRecords is the cost of the TURN relay's session check
// when its cache misses: one HGET.
func BenchmarkSessionRecords(b *testing.B) {
	srv := redistest.StartServer(b)
	rdb, err := NewClient(srv.URL())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = rdb.Close() })
	ctx := context.Background()
	rdb.HSet(ctx, SessionKey(DefaultPrefix, "s_live"), "st", 2)
	r := SessionRecords{Client: rdb}
	for b.Loop() {
		if ok, err := r.Chatting(ctx, "s_live"); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}
