//go:build deploy

package deploy

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/strangerchat/stranger/internal/freeport"
	"github.com/strangerchat/stranger/internal/logbuf"
	"github.com/strangerchat/stranger/internal/turnserver"
	"github.com/strangerchat/stranger/internal/turnserver/relaytest"
)

// placeholder is deploy/turnserver.conf's static-auth-secret: public, so
// it must never be a secret coturn accepts.
const placeholder = "REPLACE-WITH-THE-SAME-SECRET-AS-STRANGER-TURN-SECRET"

// TestComposeCoturnSecret: deploy/compose.yaml gives coturn its secret as a
// file, never on a command line (ps shows those to every user of the
// host), and deploy/coturn-start.sh, run with the real turnserver.conf and
// a real coturn on loopback, makes coturn take that secret and only it.
func TestComposeCoturnSecret(t *testing.T) {
	const secret = "compose-coturn-secret-0123456789"
	raw, err := os.ReadFile("../../deploy/compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{"STRANGER_IMAGE": "localhost/stranger:test", "TURN_SECRET": secret, "PUBLIC_IP": "203.0.113.10",
		"PG_PASSWORD": "compose-test-password"}
	var cf composeFile
	if err := yaml.Unmarshal([]byte(interpolate(t, string(raw), vars)), &cf); err != nil {
		t.Fatalf("deploy/compose.yaml: %v", err)
	}
	for name, s := range cf.Services {
		line := strings.Join(append(slices.Clone(s.Entrypoint), s.Command...), " ")
		if strings.Contains(line, secret) || strings.Contains(line, "auth-secret") {
			t.Errorf("service %s has the TURN secret on its command line: %s", name, line)
		}
	}
	coturn, ok := cf.Services["coturn"]
	if !ok {
		t.Fatal("no coturn service in deploy/compose.yaml")
	}
	if !slices.Contains(coturn.Secrets, "turn_secret") || cf.Secrets["turn_secret"].Environment != "TURN_SECRET" {
		t.Fatalf("coturn does not get TURN_SECRET as the secret turn_secret: secrets %v, top level %+v", coturn.Secrets, cf.Secrets)
	}
	// The entrypoint runs the script mounted from deploy/, on the
	// configuration mounted from deploy/, at the paths the script reads by
	// default.
	for _, mount := range []string{"./coturn-start.sh:/usr/local/bin/coturn-start.sh:ro", "./turnserver.conf:/etc/coturn/turnserver.conf:ro"} {
		if !slices.Contains(coturn.Volumes, mount) {
			t.Errorf("coturn lacks the volume %s (has %v)", mount, coturn.Volumes)
		}
	}
	if want := []string{"/bin/sh", "/usr/local/bin/coturn-start.sh"}; !slices.Equal(coturn.Entrypoint, want) {
		t.Errorf("coturn entrypoint %q, want %q", coturn.Entrypoint, want)
	}

	// The script, with the same configuration and arguments, and a real
	// coturn on loopback.
	bin, err := exec.LookPath("turnserver")
	if err != nil {
		t.Fatalf("%v: apt-get install -y coturn", err)
	}
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "turn_secret")
	if err := os.WriteFile(secretFile, []byte(secret+"\n"), 0o400); err != nil {
		t.Fatal(err)
	}
	port := freeport.MustUDP(t)
	args := append(slices.Clone(coturn.Command),
		"--log-file=stdout", "--pidfile="+filepath.Join(dir, "turnserver.pid"),
		"--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1", "--listening-port="+strconv.Itoa(port),
		"--no-tls", "--min-port=42000", "--max-port=42999", "-m", "1")
	cmd := exec.Command("/bin/sh", append([]string{"../../deploy/coturn-start.sh"}, args...)...)
	cmd.Env = append(os.Environ(), "TURN_SECRET_FILE="+secretFile, "COTURN_CONFIG=../../deploy/turnserver.conf", "COTURN_RUN_DIR="+dir,
		"PATH="+filepath.Dir(bin)+":"+os.Getenv("PATH"))
	out := &logbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("coturn-start.sh output:\n%s", out.String())
		}
	})

	addr := "127.0.0.1:" + strconv.Itoa(port)
	user, pass := turnserver.Mint(secret, "s_compose", time.Now().Add(time.Hour))
	deadline := time.Now().Add(10 * time.Second)
	for {
		cl := relaytest.Client(t, "127.0.0.1:0", addr, user, pass, "")
		relay, err := cl.Allocate()
		if err == nil {
			_ = relay.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("coturn refused credentials minted from the secret file: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The secret is in coturn's private copy of the configuration, not on
	// its command line (the script exec's coturn: same process).
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(cmdline, []byte("turnserver")) || bytes.Contains(cmdline, []byte(secret)) {
		t.Errorf("coturn's command line: %q", bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}))
	}
	copyPath := filepath.Join(dir, "turnserver.conf")
	st, err := os.Stat(copyPath)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("the configuration with the secret has mode %v, want 0600", st.Mode().Perm())
	}
	copied, _ := os.ReadFile(copyPath)
	if strings.Count(string(copied), "static-auth-secret=") != 1 || strings.Contains(string(copied), placeholder) {
		t.Errorf("the private configuration has other secrets than the file's:\n%s", copied)
	}
	// The sample's public placeholder, and any other secret, are refused.
	for _, wrong := range []string{placeholder, "another-secret-0123456789abcdef"} {
		u, p := turnserver.Mint(wrong, "s_compose", time.Now().Add(time.Hour))
		cl := relaytest.Client(t, "127.0.0.1:0", addr, u, p, "")
		if relay, err := cl.Allocate(); err == nil {
			_ = relay.Close()
			t.Errorf("coturn accepted credentials minted from %q", wrong)
		}
	}
}

// A secret shorter than the nodes accept stops the script before coturn.
func TestCoturnStartRefusesShortSecret(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "turn_secret")
	if err := os.WriteFile(secretFile, []byte("short\n"), 0o400); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/bin/sh", "../../deploy/coturn-start.sh")
	cmd.Env = append(os.Environ(), "TURN_SECRET_FILE="+secretFile, "COTURN_CONFIG=../../deploy/turnserver.conf", "COTURN_RUN_DIR="+dir)
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "shorter than 16") {
		t.Fatalf("short secret: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "turnserver.conf")); err == nil {
		t.Error("a configuration was written for a short secret")
	}
}
