// Command stranger is a random video and text chat node: web app, signaling
// WebSocket, metrics. See README.md for its flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/strangerchat/stranger/internal/config"
	"github.com/strangerchat/stranger/internal/server"
)

func main() {
	cfg, err := config.Parse(os.Args[1:], os.Getenv, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "stranger: invalid configuration:\n%v\n", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := server.Run(ctx, cfg, server.NewLogger(cfg, os.Stderr)); err != nil {
		fmt.Fprintf(os.Stderr, "stranger: %v\n", err)
		os.Exit(1)
	}
}
