// Command stranger is a random video and text chat node: web app, signaling
// WebSocket, metrics. `stranger turn` runs only the TURN relay. See
// README.md and docs/deploy.md for the flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/strangerchat/stranger/internal/config"
	"github.com/strangerchat/stranger/internal/server"
)

// Set at link time by `make dist` (-X main.version=… -X main.commit=…); a
// plain `go build` falls back to what the Go toolchain recorded.
var (
	version = "dev"
	commit  = ""
)

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

func run(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cfg, err := config.Parse(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if cfg.Action == config.PrintVersion {
		fmt.Fprintln(stdout, versionString())
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "stranger: invalid configuration:\n%v\n", err)
		return 2
	}
	if cfg.Action == config.CheckConfig {
		role := "node"
		if cfg.Role == config.RoleRelay {
			role = "relay"
		}
		for _, w := range cfg.Warnings {
			fmt.Fprintf(stderr, "stranger: warning: %s\n", w)
		}
		fmt.Fprintf(stdout, "stranger: configuration valid (%s)\n", role)
		return 0
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := server.NewLogger(cfg, stderr)
	for _, w := range cfg.Warnings {
		log.Warn(w)
	}
	if cfg.Role == config.RoleRelay {
		err = runRelay(ctx, cfg, log)
	} else {
		err = server.Run(ctx, cfg, log)
	}
	if err != nil {
		fmt.Fprintf(stderr, "stranger: %v\n", err)
		return 1
	}
	return 0
}

func versionString() string {
	c := commit
	if c == "" {
		if bi, ok := debug.ReadBuildInfo(); ok {
			for _, s := range bi.Settings {
				if s.Key == "vcs.revision" {
					c = s.Value
				}
			}
		}
	}
	if c == "" {
		c = "unknown"
	}
	return fmt.Sprintf("stranger %s (commit %s)", version, c)
}
