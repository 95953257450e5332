//go:build deploy

package deploy

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// composeFile is the part of deploy/compose.yaml the check reads.
type composeFile struct {
	Services map[string]struct {
		Image       string            `yaml:"image"`
		Entrypoint  []string          `yaml:"entrypoint"`
		Command     []string          `yaml:"command"`
		Environment map[string]string `yaml:"environment"`
		Secrets     []string          `yaml:"secrets"`
		Volumes     []string          `yaml:"volumes"`
	} `yaml:"services"`
	Secrets map[string]struct {
		Environment string `yaml:"environment"`
		File        string `yaml:"file"`
	} `yaml:"secrets"`
}

// interpolate expands ${NAME}, ${NAME:?message} and ${NAME:-default} the
// way compose does, from vars; an unset required variable fails the test.
func interpolate(t *testing.T, s string, vars map[string]string) string {
	t.Helper()
	re := regexp.MustCompile(`\$\{([A-Z_]+)(?::([?-])([^}]*))?\}`)
	return re.ReplaceAllStringFunc(s, func(m string) string {
		p := re.FindStringSubmatch(m)
		if v, ok := vars[p[1]]; ok {
			return v
		}
		if p[2] == "-" {
			return p[3]
		}
		t.Fatalf("compose variable %s is unset (%s)", p[1], p[3])
		return ""
	})
}

// TestComposeCommandsValid runs each stranger service of deploy/compose.yaml
// — its command line and environment, the image's own entrypoint — through
// --check-config in the image's root file system.
func TestComposeCommandsValid(t *testing.T) {
	img := image(t)
	raw, err := os.ReadFile("../../deploy/compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{"STRANGER_IMAGE": img, "TURN_SECRET": "compose-test-secret-0123456789", "PUBLIC_IP": "203.0.113.10",
		"PG_PASSWORD": "compose-test-password"}
	var cf composeFile
	if err := yaml.Unmarshal([]byte(interpolate(t, string(raw), vars)), &cf); err != nil {
		t.Fatalf("deploy/compose.yaml: %v", err)
	}
	var inspect []imageConfig
	if err := json.Unmarshal([]byte(podman(t, "image", "inspect", img)), &inspect); err != nil || len(inspect) != 1 {
		t.Fatalf("inspect %s: %v", img, err)
	}
	ic := inspect[0]
	root := podman(t, "image", "mount", img)
	t.Cleanup(func() { _ = exec.Command("podman", "image", "unmount", img).Run() })

	check := func(command []string, env map[string]string) (string, error) {
		args := append([]string{"--userspec=" + ic.Config.User, root}, ic.Config.Entrypoint...)
		args = append(append(args, command...), "--check-config")
		cmd := exec.Command("chroot", args...)
		cmd.Env = append([]string(nil), ic.Config.Env...)
		for k, v := range env {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}

	var names []string
	for name, s := range cf.Services {
		if s.Image == img {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	if len(names) < 3 {
		t.Fatalf("compose.yaml runs the image in %v; want at least three nodes", names)
	}
	for _, name := range names {
		s := cf.Services[name]
		out, err := check(s.Command, s.Environment)
		if err != nil || !strings.Contains(out, "configuration valid") {
			t.Errorf("service %s: %v\n%s", name, err, out)
		}
		if s.Environment["STRANGER_REDIS"] == "" {
			t.Errorf("service %s has no Redis: the nodes would not share their queue", name)
		}
		if db := s.Environment["STRANGER_DATABASE"]; db == "" || strings.Contains(db, "compose-test-password") {
			t.Errorf("service %s: database %q; want a shared PostgreSQL, its password not in the URL", name, db)
		}
	}

	// The check is not a formality: a flag the binary does not know, or a
	// value it refuses, fails it.
	s := cf.Services[names[0]]
	if out, err := check(append(s.Command, "--no-such-flag"), s.Environment); err == nil {
		t.Errorf("an unknown flag passed --check-config:\n%s", out)
	}
	bad := map[string]string{}
	for k, v := range s.Environment {
		bad[k] = v
	}
	bad["STRANGER_REDIS"] = "127.0.0.1:6379"
	if out, err := check(s.Command, bad); err == nil {
		t.Errorf("a Redis address without redis:// passed --check-config:\n%s", out)
	}
}

// TestSystemdUnitVerifies checks deploy/stranger.service with systemd's own
// checker, pointed at the dist binary (no systemd runs units here).
func TestSystemdUnitVerifies(t *testing.T) {
	bin, err := filepath.Abs("../../dist/stranger-linux-" + runtime.GOARCH)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("%v: run make test-deploy, which builds it", err)
	}
	raw, err := os.ReadFile("../../deploy/stranger.service")
	if err != nil {
		t.Fatal(err)
	}
	unit := filepath.Join(t.TempDir(), "stranger.service")
	if err := os.WriteFile(unit, []byte(strings.ReplaceAll(string(raw), "/usr/local/bin/stranger", bin)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("systemd-analyze", "verify", unit).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}
