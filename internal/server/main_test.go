package server_test

import (
	"testing"

	"github.com/strangerchat/stranger/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }
