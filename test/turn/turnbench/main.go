// Command turnbench runs the embedded TURN server (internal/turnserver) as
// a process of its own, so the TURN benchmark can read its CPU time from
// /proc/PID/stat exactly as it does coturn's. It is a test harness, not a
// deployment tool: the real server starts the embedded TURN with
// --turn-listen.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/strangerchat/stranger/internal/turnserver"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "turnbench:", err)
		os.Exit(1)
	}
}

func run() error {
	var cfg turnserver.Config
	flag.StringVar(&cfg.Listen, "listen", "127.0.0.1:3478", "UDP and TCP listen address")
	flag.StringVar(&cfg.PublicIP, "public-ip", "127.0.0.1", "advertised relay address")
	flag.StringVar(&cfg.Realm, "realm", turnserver.DefaultRealm, "realm")
	flag.StringVar(&cfg.Secret, "secret", "", "shared secret")
	flag.IntVar(&cfg.RelayPortMin, "min-port", 49152, "lowest relay port")
	flag.IntVar(&cfg.RelayPortMax, "max-port", 65535, "highest relay port")
	flag.BoolVar(&cfg.AllowLoopback, "allow-loopback", true, "relay to loopback peers")
	flag.IntVar(&cfg.Sockets, "sockets", 0, "UDP sockets on the listen port (0: 1)")
	flag.Int64Var(&cfg.BandwidthPerAllocation, "bandwidth", 0, "bytes/s per allocation and direction (0: no cap)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile here until SIGTERM")
	debug := flag.Bool("debug", false, "debug logging")
	flag.Parse()

	level := slog.LevelWarn
	if *debug {
		level = slog.LevelDebug - 4 // pion's own debug output
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv, err := turnserver.Start(ctx, cfg, log)
	if err != nil {
		return err
	}
	fmt.Printf("ready %d\n", srv.Port())
	<-ctx.Done()
	st := srv.Stats()
	fmt.Fprintf(os.Stderr, "stats %+v\n", st)
	return srv.Close()
}
