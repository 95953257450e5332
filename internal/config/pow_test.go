package config

import (
	"bytes"
	"strings"
	"testing"
)

func TestPowDifficulty(t *testing.T) {
	c, err := Parse(nil, env(nil), &bytes.Buffer{})
	if err != nil || c.PowDifficulty != DefaultPowDifficulty || DefaultPowDifficulty == 0 {
		t.Fatalf("default %d (%v), want %d, on", c.PowDifficulty, err, DefaultPowDifficulty)
	}
	if c, err = Parse([]string{"--pow-difficulty", "0"}, env(nil), &bytes.Buffer{}); err != nil || c.PowDifficulty != 0 {
		t.Fatalf("--pow-difficulty 0: %d %v", c.PowDifficulty, err)
	}
	if c, err = Parse(nil, env(map[string]string{"STRANGER_POW_DIFFICULTY": "1234"}), &bytes.Buffer{}); err != nil || c.PowDifficulty != 1234 {
		t.Fatalf("environment: %d %v", c.PowDifficulty, err)
	}
	for _, bad := range []string{"-1", "10000001", "lots"} {
		if _, err := Parse([]string{"--pow-difficulty", bad}, env(nil), &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "pow-difficulty") {
			t.Errorf("--pow-difficulty %s: %v, want an error naming the flag", bad, err)
		}
	}
}
