package config

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/strangerchat/stranger/internal/clientip"
)

func writeFile(t *testing.T, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // past the umask
		t.Fatal(err)
	}
	return p
}

func TestTrustedProxies(t *testing.T) {
	c, err := Parse([]string{"--trusted-proxies", "10.0.0.5, 192.168.0.0/16,::1"}, env(nil), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range c.TrustedProxies {
		got = append(got, p.String())
	}
	if want := []string{"10.0.0.5/32", "192.168.0.0/16", "::1/128"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("TrustedProxies = %v, want %v", got, want)
	}
	if len(c.Warnings) != 0 {
		t.Fatalf("warnings %q", c.Warnings)
	}

	_, err = Parse([]string{"--trusted-proxies", "10.0.0.0/40"}, env(nil), &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "trusted-proxies") {
		t.Fatalf("a bad prefix: err = %v", err)
	}

	// The deprecated --trust-proxy is loopback only, with a warning.
	for _, tc := range []struct {
		args []string
		env  map[string]string
	}{
		{[]string{"--trust-proxy"}, nil},
		{nil, map[string]string{"STRANGER_TRUST_PROXY": "true"}},
	} {
		c, err = Parse(tc.args, env(tc.env), &bytes.Buffer{})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(c.TrustedProxies, clientip.Loopback()) {
			t.Fatalf("%v %v: TrustedProxies = %v, want loopback", tc.args, tc.env, c.TrustedProxies)
		}
		if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], "deprecated") {
			t.Fatalf("warnings %q, want the deprecation", c.Warnings)
		}
	}
	if _, err = Parse([]string{"--trust-proxy", "--trusted-proxies", "10.0.0.5"}, env(nil), &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "--trust-proxy") {
		t.Fatalf("both: err = %v", err)
	}
}

func TestSecretFiles(t *testing.T) {
	const secret = "0123456789abcdef-secret"
	private := writeFile(t, secret+"\n", 0o600)

	c, err := Parse([]string{"--turn-secret-file", private, "--admin-token-file", private}, env(nil), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if c.TURNSecret != secret || c.AdminToken != secret || len(c.Warnings) != 0 {
		t.Fatalf("TURNSecret %q, AdminToken %q, warnings %q", c.TURNSecret, c.AdminToken, c.Warnings)
	}
	// The environment names the file as well; the relay reads it too.
	c, err = Parse([]string{"turn", "--turn-listen", ":3478", "--turn-public-ip", "192.0.2.1"},
		env(map[string]string{"STRANGER_TURN_SECRET_FILE": private}), &bytes.Buffer{})
	if err != nil || c.TURNSecret != secret {
		t.Fatalf("relay: TURNSecret %q, err %v", c.TURNSecret, err)
	}

	// Exclusive with the inline secret, from a flag or the environment.
	for _, tc := range []struct {
		args []string
		env  map[string]string
	}{
		{[]string{"--turn-secret-file", private, "--turn-secret", secret}, nil},
		{[]string{"--turn-secret-file", private}, map[string]string{"STRANGER_TURN_SECRET": secret}},
	} {
		if _, err := Parse(tc.args, env(tc.env), &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "not both") {
			t.Errorf("%v %v: err = %v, want 'not both'", tc.args, tc.env, err)
		}
	}

	for name, path := range map[string]string{
		"empty":   writeFile(t, "\n", 0o600),
		"missing": filepath.Join(t.TempDir(), "nothing"),
	} {
		_, err := Parse([]string{"--turn-secret-file", path}, env(nil), &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), "--turn-secret-file") {
			t.Errorf("%s file: err = %v", name, err)
		}
	}

	readable := writeFile(t, secret, 0o644)
	c, err = Parse([]string{"--turn-secret-file", readable}, env(nil), &bytes.Buffer{})
	if err != nil || c.TURNSecret != secret {
		t.Fatalf("TURNSecret %q, err %v", c.TURNSecret, err)
	}
	if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], "0644") {
		t.Fatalf("warnings %q, want one about the mode", c.Warnings)
	}
}

func TestIdentityKeyFile(t *testing.T) {
	hexKey := strings.Repeat("0f", 32)
	for _, tc := range []struct {
		content string
		want    []byte
		err     bool
	}{
		{hexKey + "\n", bytes.Repeat([]byte{0x0f}, 32), false},
		{"a raw key of some length", []byte("a raw key of some length"), false},
		{"short", nil, true},
	} {
		c, err := Parse([]string{"--identity-key-file", writeFile(t, tc.content, 0o600)}, env(nil), &bytes.Buffer{})
		if tc.err {
			if err == nil || !strings.Contains(err.Error(), "--identity-key-file") {
				t.Errorf("%q: err = %v, want an error naming the flag", tc.content, err)
			}
			continue
		}
		if err != nil || !bytes.Equal(c.IdentityKey, tc.want) {
			t.Errorf("%q: IdentityKey %x, err %v; want %x", tc.content, c.IdentityKey, err, tc.want)
		}
	}
}

func TestHTTPIdleTimeout(t *testing.T) {
	c, err := Parse([]string{"--http-idle-timeout", "90s", "--public-metrics"}, env(nil), &bytes.Buffer{})
	if err != nil || c.HTTPIdleTimeout.Seconds() != 90 || !c.PublicMetrics {
		t.Fatalf("HTTPIdleTimeout %v, PublicMetrics %v, err %v", c.HTTPIdleTimeout, c.PublicMetrics, err)
	}
	if _, err := Parse([]string{"--http-idle-timeout", "0s"}, env(nil), &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "--http-idle-timeout") {
		t.Fatalf("0s: err = %v", err)
	}
}
