package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/strangerchat/stranger/internal/certs"
	"github.com/strangerchat/stranger/internal/cluster"
	"github.com/strangerchat/stranger/internal/config"
	"github.com/strangerchat/stranger/internal/turnserver"
)

// runRelay is `stranger turn`: the relay a node embeds, with the same
// credentials (--turn-secret) and peer policy, alone in its process; its
// metrics on --admin-addr. It runs until ctx ends.
func runRelay(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	r, err := startRelay(ctx, cfg, log)
	if err != nil {
		return err
	}
	<-ctx.Done()
	log.Info("relay stopping")
	return r.close()
}

// relay is a started `stranger turn`.
type relay struct {
	turn  *turnserver.Server
	admin net.Listener // nil without --admin-addr
	close func() error
}

func startRelay(ctx context.Context, cfg config.Config, log *slog.Logger) (*relay, error) {
	if cfg.GOMAXPROCS > 0 {
		runtime.GOMAXPROCS(cfg.GOMAXPROCS)
	}
	tc := cfg.TURNServer()
	if cfg.TLSCert != "" {
		files, err := certs.LoadFiles(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return nil, err
		}
		tc.TLS = files.TLSConfig()
		certs.ReloadOnHUP(ctx, log, func() error {
			if err := files.Reload(); err != nil {
				return err
			}
			log.Info("certificate names", "names", files.Names())
			return nil
		})
	}
	closeRedis := func() error { return nil }
	if cfg.Redis != "" {
		// The nodes' session records: credentials of sessions that ended,
		// or whose chat ended, are refused. Without --redis the relay
		// cannot know and accepts them until they expire.
		rdb, err := cluster.NewClient(cfg.Redis)
		if err != nil {
			return nil, fmt.Errorf("--redis: %w", err)
		}
		tc.Sessions = cluster.SessionRecords{Client: rdb}
		closeRedis = rdb.Close
	} else {
		log.Warn("no --redis: the relay cannot tell ended chats and accepts their credentials until they expire")
	}
	t, err := turnserver.Start(ctx, tc, log)
	if err != nil {
		_ = closeRedis()
		return nil, err
	}
	r := &relay{turn: t, close: func() error { return errors.Join(t.Close(), closeRedis()) }}

	if cfg.AdminAddr != "" {
		reg := prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), t)
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		ln, err := net.Listen("tcp", cfg.AdminAddr)
		if err != nil {
			_ = r.close()
			return nil, fmt.Errorf("--admin-addr %s: %w", cfg.AdminAddr, err)
		}
		r.admin = ln
		hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: cfg.HTTPIdleTimeout}
		go func() {
			if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("admin server stopped", "err", err)
			}
		}()
		closeTURN := r.close
		r.close = func() error { return errors.Join(hs.Close(), closeTURN()) }
	}
	log.Info("relay running", "gomaxprocs", runtime.GOMAXPROCS(0), "turn_port", t.Port(), "turn_tls_port", t.TLSPort())
	return r, nil
}
