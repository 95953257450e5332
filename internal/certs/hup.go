package certs

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

// ReloadOnHUP calls reload on every SIGHUP until ctx ends, logging the
// outcome: a failed reload keeps the certificate in use. It is how a node
// and `stranger turn` pick up a renewed --tls-cert without a restart.
func ReloadOnHUP(ctx context.Context, log *slog.Logger, reload func() error) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				if err := reload(); err != nil {
					log.Error("certificate reload failed; keeping the previous one", "err", err)
				} else {
					log.Info("certificate reloaded")
				}
			}
		}
	}()
}
