package config

import (
	"bytes"
	"strings"
	"testing"
)

func TestQuotaFlags(t *testing.T) {
	c, err := Parse(nil, env(nil), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxConnsPerIP != 20 || c.ConnRate != 5 || c.ConnBurst != 40 || c.MaxWaitingPerIP != 10 || c.NextRate != 0.5 || c.NextBurst != 5 {
		t.Fatalf("quota defaults differ from docs/security.md: %+v", c)
	}
	c, err = Parse([]string{"--max-sessions-per-ip", "3", "--conn-rate", "2", "--conn-burst", "4",
		"--max-waiting-per-ip", "1", "--next-rate", "0.25", "--next-burst", "2"}, env(nil), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxConnsPerIP != 3 || c.ConnRate != 2 || c.ConnBurst != 4 || c.MaxWaitingPerIP != 1 || c.NextRate != 0.25 || c.NextBurst != 2 {
		t.Fatalf("got %+v", c)
	}
	// The older name still works, from the environment too.
	c, err = Parse(nil, env(map[string]string{"STRANGER_MAX_CONNS_PER_IP": "6", "STRANGER_NEXT_RATE": "0"}), &bytes.Buffer{})
	if err != nil || c.MaxConnsPerIP != 6 || c.NextRate != 0 {
		t.Fatalf("got %+v, %v", c, err)
	}
}

func TestQuotaFlagsRefuseNonsense(t *testing.T) {
	for _, args := range [][]string{
		{"--conn-rate", "-1"},
		{"--conn-burst", "0"},
		{"--max-waiting-per-ip", "-1"},
		{"--next-rate", "-0.5"},
		{"--next-burst", "0"},
		{"--max-sessions-per-ip", "-1"},
	} {
		_, err := Parse(args, env(nil), &bytes.Buffer{})
		flag := strings.TrimPrefix(args[0], "--")
		if err == nil || !strings.Contains(err.Error(), "--"+flag) {
			t.Errorf("%v: err = %v, want one naming --%s", args, err, flag)
		}
	}
}
