package pgtest

import (
	"context"
	"database/sql"
	"os"
	"testing"
	"time"
)

// The server answers SQL on its own database and on a new one, and Stop
// removes it: nothing answers afterwards and its directory is gone.
func TestStartNewDatabaseStop(t *testing.T) {
	s := Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, url := range []string{s.URL("postgres"), s.NewDatabase(t), s.NewDatabase(t)} {
		db, err := sql.Open("pgx", url)
		if err != nil {
			t.Fatal(err)
		}
		var one int
		if err := db.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
			t.Fatalf("%s: SELECT 1 = %d, %v", url, one, err)
		}
		db.Close()
	}
	s.Stop()
	if err := ping(s.URL("postgres")); err == nil {
		t.Fatal("server still answers after Stop")
	}
	if _, err := os.Stat(s.dir); !os.IsNotExist(err) {
		t.Fatalf("directory left after Stop: %v", err)
	}
	s.Stop() // idempotent
}
