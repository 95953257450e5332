package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/strangerchat/stranger/internal/certs"
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
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		go func() {
			defer signal.Stop(hup)
			for {
				select {
				case <-ctx.Done():
					return
				case <-hup:
					if err := files.Reload(); err != nil {
						log.Error("certificate reload failed; keeping the previous one", "err", err)
					} else {
						log.Info("certificate reloaded", "names", files.Names())
					}
				}
			}
		}()
	}
	t, err := turnserver.Start(ctx, tc, log)
	if err != nil {
		return nil, err
	}
	r := &relay{turn: t, close: t.Close}

	if cfg.AdminAddr != "" {
		reg := prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), t)
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		ln, err := net.Listen("tcp", cfg.AdminAddr)
		if err != nil {
			_ = t.Close()
			return nil, fmt.Errorf("--admin-addr %s: %w", cfg.AdminAddr, err)
		}
		r.admin = ln
		hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: cfg.HTTPIdleTimeout}
		go func() {
			if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("admin server stopped", "err", err)
			}
		}()
		r.close = func() error { return errors.Join(hs.Close(), t.Close()) }
	}
	log.Info("relay running", "gomaxprocs", runtime.GOMAXPROCS(0), "turn_port", t.Port(), "turn_tls_port", t.TLSPort())
	return r, nil
}
