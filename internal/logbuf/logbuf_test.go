package logbuf

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

// TestConcurrentWrites: writes from many goroutines all arrive whole, and
// Tail cuts from the front.
func TestConcurrentWrites(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 100 {
				fmt.Fprintf(&b, "w%d-%03d\n", i, j)
			}
		})
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != 800 {
		t.Fatalf("%d lines, want 800", len(lines))
	}
	for _, l := range lines {
		if len(l) != 6 {
			t.Fatalf("torn line %q", l)
		}
	}
	if got := b.Tail(7); got != "…"+b.String()[len(b.String())-7:] || len(b.Tail(1<<20)) != len(b.String()) {
		t.Fatalf("Tail(7) = %q", got)
	}
}
