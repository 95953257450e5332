package config

import (
	"bytes"
	"errors"
	"flag"
	"reflect"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaultsWithNoFlags(t *testing.T) {
	c, err := Parse(nil, env(map[string]string{"HOME": "/home/ann"}), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.DataDir = "/home/ann/.local/state/stranger" // Parse fills in the user's state directory
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("Parse() = %+v, want defaults %+v", c, want)
	}
	if c.Addr != ":8080" || c.InterestTimeout != 5*time.Second || c.ResumeGrace != 15*time.Second ||
		len(c.STUN) != 1 || c.STUN[0] != "stun:stun.l.google.com:19302" || len(c.AllowedOrigins) != 0 {
		t.Fatalf("defaults differ from the documented ones: %+v", c)
	}
}

func TestFlagsAndEnvironment(t *testing.T) {
	c, err := Parse([]string{"--interest-timeout", "3s", "--allowed-origins", "https://a.example, https://b.example:8443"},
		env(map[string]string{
			"STRANGER_RESUME_GRACE":     "10s",
			"STRANGER_INTEREST_TIMEOUT": "9s", // the flag wins
			"STRANGER_STUN":             "",   // empty env = not set
			"STRANGER_MAX_CONNS_PER_IP": "7",
		}), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if c.InterestTimeout != 3*time.Second || c.ResumeGrace != 10*time.Second || c.MaxConnsPerIP != 7 {
		t.Fatalf("got %+v", c)
	}
	if want := []string{"https://a.example", "https://b.example:8443"}; !reflect.DeepEqual(c.AllowedOrigins, want) {
		t.Fatalf("AllowedOrigins = %q, want %q", c.AllowedOrigins, want)
	}
	if len(c.STUN) != 1 {
		t.Fatalf("STUN = %q", c.STUN)
	}
}

func TestEmptySTUNFlagMeansNone(t *testing.T) {
	c, err := Parse([]string{"--stun", ""}, env(nil), &bytes.Buffer{})
	if err != nil || len(c.STUN) != 0 {
		t.Fatalf("STUN = %q, err %v", c.STUN, err)
	}
}

func TestEnvNames(t *testing.T) {
	if got := EnvName("turn-allow-loopback"); got != "STRANGER_TURN_ALLOW_LOOPBACK" {
		t.Fatal(got)
	}
}

func TestInvalidConfigurationNamesTheFlag(t *testing.T) {
	cases := []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--addr", "8080"}, nil, "--addr"},
		{[]string{"--resume-grace", "0s"}, nil, "--resume-grace"},
		{[]string{"--interest-timeout", "-1s"}, nil, "--interest-timeout"},
		{[]string{"--allowed-origins", "chat.example.com"}, nil, "--allowed-origins"},
		{[]string{"--stun", "http://x"}, nil, "--stun"},
		{[]string{"--msg-rate", "0"}, nil, "--msg-rate"},
		{[]string{"--max-report-blocks", "-1"}, nil, "--max-report-blocks"},
		{[]string{"--ping-interval", "40s"}, nil, "--pong-timeout"},
		{[]string{"--log-format", "xml"}, nil, "--log-format"},
		{[]string{"--redis", "http://x"}, nil, "--redis"},
		{[]string{"--turn-listen", ":3478"}, nil, "--turn-secret"},
		{[]string{"--turn-listen", ":3478", "--turn-secret", "0123456789abcdef"}, nil, "--turn-public-ip"},
		{[]string{"--turn-urls", "turn:x:3478", "--turn-secret", "short"}, nil, "--turn-secret"},
		{[]string{"--turn-relay-ports", "9-3"}, nil, "--turn-relay-ports"},
		{nil, map[string]string{"STRANGER_RESUME_GRACE": "soon"}, "STRANGER_RESUME_GRACE (--resume-grace)"},
		{[]string{"extra"}, nil, "unexpected argument"},
		{[]string{"--report-retention", "0s"}, nil, "--report-retention"},
		{[]string{"--evidence-max-bytes", "1000"}, nil, "--evidence-max-bytes"},
		{[]string{"--report-burst", "0"}, nil, "--report-burst"},
		{[]string{"--report-every", "-1m"}, nil, "--report-every"},
		{[]string{"--admin-auth-failures", "0"}, nil, "--admin-auth-failures"},
	}
	for _, tc := range cases {
		_, err := Parse(tc.args, env(tc.env), &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q, %v) error = %v, want one naming %q", tc.args, tc.env, err, tc.want)
		}
	}
}

func TestHelpListsEveryFlagAndTheEnvironment(t *testing.T) {
	var out bytes.Buffer
	_, err := Parse([]string{"--help"}, env(nil), &out)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("err = %v", err)
	}
	for _, name := range []string{"addr", "interest-timeout", "resume-grace", "allowed-origins", "stun",
		"max-conns-per-ip", "msg-rate", "redis", "turn-listen", "turn-secret", "STRANGER_"} {
		if !strings.Contains(out.String(), name) {
			t.Errorf("--help does not mention %q", name)
		}
	}
}

func TestTLSDefaults(t *testing.T) {
	c, err := Parse([]string{"--tls-domain", "chat.example.org, www.example.org", "--turn-listen", ":3478",
		"--turn-public-ip", "203.0.113.10", "--turn-secret", "0123456789abcdef0"}, env(nil), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if !c.TLS() || c.Addr != ":443" || c.HTTPAddr != ":80" || c.TURNTLSListen != ":5349" ||
		!reflect.DeepEqual(c.TLSDomains, []string{"chat.example.org", "www.example.org"}) || c.ACMECA != LetsEncrypt {
		t.Fatalf("TLS defaults: %+v", c)
	}
	// Explicit addresses win over the TLS defaults, from flags or environment.
	c, err = Parse([]string{"--tls-domain", "chat.example.org", "--addr", ":8443"},
		env(map[string]string{"STRANGER_HTTP_ADDR": ":8080"}), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != ":8443" || c.HTTPAddr != ":8080" || c.TURNTLSListen != "" {
		t.Fatalf("explicit addresses: %+v", c)
	}
}

func TestTLSValidation(t *testing.T) {
	for _, args := range [][]string{
		{"--tls-domain", "localhost:443"},
		{"--tls-cert", "/nonexistent/cert.pem"},
		{"--tls-cert", "/nonexistent/cert.pem", "--tls-key", "/nonexistent/key.pem"},
		{"--http-addr", ":80"},
		{"--turn-tls-listen", ":5349"},
		{"--tls-domain", "chat.example.org", "--acme-ca", "http://ca.example.org/dir"},
		{"--tls-domain", "chat.example.org", "--acme-ca-root", "/nonexistent/root.pem"},
		{"turn", "--turn-listen", ":3478", "--turn-public-ip", "203.0.113.10", "--turn-secret", "0123456789abcdef0", "--tls-domain", "chat.example.org"},
	} {
		if _, err := Parse(args, env(nil), &bytes.Buffer{}); err == nil {
			t.Errorf("%q validated", args)
		}
	}
}

// --data-dir may be empty with --tls-domain only when the certificates are
// kept in Redis.
func TestTLSDataDir(t *testing.T) {
	if _, err := Parse([]string{"--tls-domain", "chat.example.org", "--data-dir", ""}, env(nil), &bytes.Buffer{}); err == nil ||
		!strings.Contains(err.Error(), "--data-dir") {
		t.Errorf("--tls-domain without --data-dir or --redis: %v", err)
	}
	if _, err := Parse([]string{"--tls-domain", "chat.example.org", "--data-dir", "", "--redis", "redis://127.0.0.1:6379/0"},
		env(nil), &bytes.Buffer{}); err != nil {
		t.Errorf("--tls-domain with --redis and no --data-dir: %v", err)
	}
}

func TestActions(t *testing.T) {
	c, err := Parse([]string{"--version", "--redis", "not a url"}, env(nil), &bytes.Buffer{})
	if err != nil || c.Action != PrintVersion {
		t.Fatalf("--version: %v %v", c.Action, err)
	}
	c, err = Parse([]string{"turn", "--check-config", "--turn-listen", ":3478", "--turn-public-ip", "203.0.113.10", "--turn-secret", "0123456789abcdef0"}, env(nil), &bytes.Buffer{})
	if err != nil || c.Action != CheckConfig || c.Role != RoleRelay || c.GOMAXPROCS != 1 {
		t.Fatalf("turn --check-config: %+v %v", c, err)
	}
}

func TestDataDirDefault(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{map[string]string{"XDG_STATE_HOME": "/s", "HOME": "/home/ann"}, nil, "/s/stranger"},
		{map[string]string{"XDG_STATE_HOME": "relative", "HOME": "/home/ann"}, nil, "/home/ann/.local/state/stranger"},
		{map[string]string{}, nil, "stranger-data"},
		{map[string]string{"HOME": "/home/ann", "STRANGER_DATA_DIR": "/data"}, nil, "/data"},
		{map[string]string{"HOME": "/home/ann"}, []string{"--data-dir", "/var/lib/stranger"}, "/var/lib/stranger"},
	} {
		c, err := Parse(tc.args, env(tc.env), &bytes.Buffer{})
		if err != nil {
			t.Fatal(err)
		}
		if c.DataDir != tc.want {
			t.Errorf("env %v args %v: DataDir %q, want %q", tc.env, tc.args, c.DataDir, tc.want)
		}
	}
}

func TestStoreFlags(t *testing.T) {
	c, err := Parse([]string{"--database", "postgres://u:secret@db/stranger"},
		env(map[string]string{"STRANGER_ADMIN_TOKEN": "0123456789abcdef0123"}), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Database != "postgres://u:secret@db/stranger" || c.AdminToken != "0123456789abcdef0123" {
		t.Fatalf("moderation flags not applied: %+v", c)
	}
	for _, args := range [][]string{
		{"--database", "mysql://u:secret@db/x"},
		{"--admin-token", "short"},
	} {
		_, err := Parse(args, env(nil), &bytes.Buffer{})
		if err == nil {
			t.Errorf("%v: accepted", args)
			continue
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("%v: the error shows the URL's password: %v", args, err)
		}
	}
}

func TestModerationFlags(t *testing.T) {
	c, err := Parse(nil, env(nil), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if m := c.ModerationConfig(); m.Retention != 720*time.Hour || m.Threshold != 3 || m.Window != 24*time.Hour ||
		m.EvidenceMaxBytes != 1<<30 || m.ReportBurst != 5 || m.ReportEvery != 2*time.Minute || m.AuthFailures != 10 {
		t.Fatalf("moderation defaults: %+v", m)
	}
	c, err = Parse([]string{"--report-retention", "48h", "--evidence-max-bytes", "10000000", "--report-burst", "2",
		"--report-every", "10m", "--admin-auth-failures", "4"}, env(map[string]string{"STRANGER_BAN_THRESHOLD": "5"}), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if m := c.ModerationConfig(); m.Retention != 48*time.Hour || m.Threshold != 5 || m.EvidenceMaxBytes != 10_000_000 ||
		m.ReportBurst != 2 || m.ReportEvery != 10*time.Minute || m.AuthFailures != 4 {
		t.Fatalf("moderation flags: %+v", m)
	}
}

func TestMaxReportBlocks(t *testing.T) {
	c, err := Parse(nil, env(nil), &bytes.Buffer{})
	if err != nil || c.MaxReportBlocks != 100000 {
		t.Fatalf("default: %d, %v", c.MaxReportBlocks, err)
	}
	c, err = Parse(nil, env(map[string]string{"STRANGER_MAX_REPORT_BLOCKS": "500"}), &bytes.Buffer{})
	if err != nil || c.MaxReportBlocks != 500 {
		t.Fatalf("from the environment: %d, %v", c.MaxReportBlocks, err)
	}
}
