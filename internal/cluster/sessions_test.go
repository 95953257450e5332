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
	if err := rdb.HSet(ctx, SessionKey(DefaultPrefix, "s_live"), "st", 2).Err(); err != nil {
		t.Fatal(err)
	}
	if ok, err := r.Alive(ctx, "s_live"); !ok || err != nil {
		t.Fatalf("Alive(recorded) = %v, %v", ok, err)
	}
	if ok, err := (SessionRecords{Client: rdb, Prefix: "other:"}).Alive(ctx, "s_live"); ok || err != nil {
		t.Fatalf("Alive under another prefix = %v, %v", ok, err)
	}
	rdb.Del(ctx, SessionKey(DefaultPrefix, "s_live"))
	if ok, err := r.Alive(ctx, "s_live"); ok || err != nil {
		t.Fatalf("Alive(ended) = %v, %v", ok, err)
	}
	srv.Stop()
	if _, err := r.Alive(ctx, "s_live"); err == nil {
		t.Fatal("Alive with Redis away: no error")
	}
}
