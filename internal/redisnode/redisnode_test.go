package redisnode

import (
	"errors"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/strangerchat/stranger/internal/signaling"
)

// A request the owner cannot read is answered with a transfer of nothing
// (the requester then treats the session as gone) rather than left to time
// out; a request of an unknown kind gets no answer body.
func TestAnswerToAnUnreadableRequest(t *testing.T) {
	b, err := New(Options{URL: "redis://127.0.0.1:1/0"}) // never connects
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ans := local{b}.Answer(t.Context(), kindHandover, []byte("only-a-session"))
	tr, err := signaling.DecodeTransfer(ans)
	if err != nil || tr.Found {
		t.Fatalf("answer %q: %+v %v, want an empty transfer", ans, tr, err)
	}
	if ans := (local{b}).Answer(t.Context(), 'z', nil); ans != nil {
		t.Fatalf("answer to an unknown kind: %q", ans)
	}
}

// Close releases a backend that never started, and a second Close is a
// no-op.
func TestCloseWithoutStart(t *testing.T) {
	b, err := New(Options{URL: "redis://127.0.0.1:1/0"})
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	b.Close()
	if err := b.rdb.Ping(t.Context()).Err(); !errors.Is(err, redis.ErrClosed) {
		t.Fatalf("client after Close: %v, want closed", err)
	}
}
