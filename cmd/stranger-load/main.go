// Command stranger-load simulates Stranger protocol clients against one or
// more nodes and reports matches/s, latencies, errors and the server's RSS
// and CPU. See internal/loadgen and docs/benchmarks.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/strangerchat/stranger/internal/loadgen"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := loadgen.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
