package certs

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/strangerchat/stranger/internal/logbuf"
)

// TestReloadOnHUP: each SIGHUP reloads; a failed reload is logged as such;
// after ctx ends SIGHUP is no longer taken.
func TestReloadOnHUP(t *testing.T) {
	var logs logbuf.Buffer
	var calls atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ReloadOnHUP(ctx, slog.New(slog.NewTextHandler(&logs, nil)), func() error {
		if calls.Add(1) == 2 {
			return errors.New("bad pem")
		}
		return nil
	})
	for want := int32(1); want <= 2; want++ {
		if err := syscall.Kill(syscall.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for calls.Load() < want {
			if time.Now().After(deadline) {
				t.Fatalf("%d reloads after %d SIGHUPs", calls.Load(), want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	time.Sleep(50 * time.Millisecond) // the second outcome's log line
	cancel()
	out := logs.String()
	if !strings.Contains(out, "certificate reloaded") || !strings.Contains(out, "reload failed") || !strings.Contains(out, "bad pem") {
		t.Fatalf("log does not tell both outcomes:\n%s", out)
	}
}
