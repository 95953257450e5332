package test

import (
	"os"
	"testing"

	"github.com/strangerchat/stranger/internal/pgtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.StopShared()
	os.Exit(code)
}
