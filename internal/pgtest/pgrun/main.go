// Command pgrun starts a throwaway PostgreSQL server (internal/pgtest: a
// fresh cluster in a temporary directory on a free loopback port), prints
// the URL of an empty database on it, and stops and removes it when its
// standard input closes or it is interrupted. Scripts that run several
// nodes on one Redis use it for the --database those nodes must share:
//
//	coproc PG { go run ./internal/pgtest/pgrun; }
//	read -r DATABASE <&"${PG[0]}"
package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/strangerchat/stranger/internal/pgtest"
)

func main() {
	srv, err := pgtest.Launch()
	if err != nil {
		fmt.Fprintln(os.Stderr, "pgrun:", err)
		os.Exit(1)
	}
	defer srv.Stop()
	if err := createDB(srv.URL("postgres"), "stranger"); err != nil {
		fmt.Fprintln(os.Stderr, "pgrun:", err)
		srv.Stop()
		os.Exit(1)
	}
	fmt.Println(srv.URL("stranger"))
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(done)
	}()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	select {
	case <-done:
	case <-sig:
	}
}

func createDB(url, name string) error {
	db, err := sql.Open("pgx", url)
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = db.ExecContext(ctx, "CREATE DATABASE "+name)
	return err
}
