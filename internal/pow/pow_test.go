package pow

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type vectorFile struct {
	Generator string `json:"generator"`
	HMACKey   string `json:"hmacKey"`
	Now       int64  `json:"now"`
	Cases     []struct {
		Name           string    `json:"name"`
		Want           string    `json:"want"`
		AltchaVerifies bool      `json:"altchaVerifies"`
		Challenge      Challenge `json:"challenge"`
		Payload        string    `json:"payload"`
	} `json:"cases"`
}

func loadVectors(t *testing.T) vectorFile {
	t.Helper()
	b, err := os.ReadFile("testdata/altcha-vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v vectorFile
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Cases) == 0 {
		t.Fatal("no vectors")
	}
	return v
}

func newVerifier(t *testing.T, key string, max int64) *Verifier {
	t.Helper()
	v, err := New(Options{Key: []byte(key), MaxNumber: max, Replay: NewMemoryReplay(0)})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// The verifier agrees with altcha-lib (testdata/gen-vectors.mjs) on every
// vector, and refuses for the reason the vector names.
func TestAltchaLibVectors(t *testing.T) {
	vf := loadVectors(t)
	now := time.Unix(vf.Now, 0)
	for _, c := range vf.Cases {
		t.Run(c.Name, func(t *testing.T) {
			v := newVerifier(t, vf.HMACKey, 5000)
			err := v.Verify(context.Background(), c.Payload, now)
			if got := c.Want == "ok"; got != c.AltchaVerifies {
				t.Fatalf("vector inconsistent: want %s but altcha-lib says %v", c.Want, c.AltchaVerifies)
			}
			switch c.Want {
			case "ok":
				if err != nil {
					t.Fatalf("Verify: %v, want ok", err)
				}
			default:
				if err == nil || Reason(err) != c.Want {
					t.Fatalf("Verify: %v (%s), want %s", err, Reason(err), c.Want)
				}
			}
		})
	}
}

// The altcha-lib challenges solve with our solver to the number altcha-lib
// found.
func TestSolveAltchaChallenges(t *testing.T) {
	vf := loadVectors(t)
	for _, c := range vf.Cases {
		if c.Want != "ok" {
			continue
		}
		payload, _, err := Solve(context.Background(), c.Challenge)
		if err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		if payload != c.Payload {
			t.Errorf("%s: payload %s, altcha-lib's %s", c.Name, payload, c.Payload)
		}
	}
}

func TestChallengeSolveVerify(t *testing.T) {
	v := newVerifier(t, "0123456789abcdef-key", 2000)
	now := time.Now()
	c, err := v.Challenge(now)
	if err != nil {
		t.Fatal(err)
	}
	if c.Algorithm != "SHA-256" || c.MaxNumber != 2000 || !strings.HasSuffix(c.Salt, "&") || !strings.Contains(c.Salt, "?expires=") {
		t.Fatalf("challenge %+v", c)
	}
	exp, ok := expires(c.Salt)
	if !ok || !exp.Equal(time.Unix(now.Add(DefaultTTL).Unix(), 0)) {
		t.Fatalf("expiry %v %v, want now+TTL", exp, ok)
	}
	payload, tries, err := Solve(context.Background(), c)
	if err != nil || tries < 1 || tries > 2001 {
		t.Fatalf("Solve: %v after %d", err, tries)
	}
	ctx := context.Background()
	if err := v.Verify(ctx, payload, now); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if err := v.Verify(ctx, payload, now); !errors.Is(err, ErrUsed) {
		t.Fatalf("second Verify: %v, want ErrUsed", err)
	}
	// Past its expiry, even unused, it fails.
	c2, _ := v.Challenge(now)
	p2, _, _ := Solve(ctx, c2)
	if err := v.Verify(ctx, p2, now.Add(DefaultTTL+time.Second)); !errors.Is(err, ErrExpired) {
		t.Fatalf("late Verify: %v, want ErrExpired", err)
	}
	// Another deployment's key: wrong.
	other := newVerifier(t, "another-key-of-16-bytes", 2000)
	if err := other.Verify(ctx, p2, now); !errors.Is(err, ErrWrong) {
		t.Fatalf("Verify with another key: %v, want ErrWrong", err)
	}
}

func TestVerifyRefusesBadInput(t *testing.T) {
	v := newVerifier(t, "0123456789abcdef-key", 100)
	now := time.Now()
	c, _ := v.Challenge(now)
	good := Solution{Algorithm: c.Algorithm, Challenge: c.Challenge, Salt: c.Salt, Signature: c.Signature}
	noExp := good
	noExp.Salt = "abcdef&"
	sha1 := good
	sha1.Algorithm = "SHA-1"
	neg := good
	neg.Number = -1
	for name, tc := range map[string]struct {
		payload string
		want    error
	}{
		"empty":          {"", ErrMissing},
		"huge":           {strings.Repeat("A", MaxPayloadBytes+4), ErrMalformed},
		"not json":       {"bm90IGpzb24=", ErrMalformed},
		"json array":     {"W10=", ErrMalformed},
		"other algo":     {Payload(sha1), ErrMalformed},
		"salt no expiry": {Payload(noExp), ErrMalformed},
		"negative":       {Payload(neg), ErrWrong},
	} {
		if err := v.Verify(context.Background(), tc.payload, now); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
}

func TestNewRefusesBadOptions(t *testing.T) {
	for name, o := range map[string]Options{
		"short key": {Key: []byte("short"), MaxNumber: 10, Replay: NewMemoryReplay(0)},
		"no number": {Key: make([]byte, 32), MaxNumber: 0, Replay: NewMemoryReplay(0)},
		"no replay": {Key: make([]byte, 32), MaxNumber: 10},
		"neg ttl":   {Key: make([]byte, 32), MaxNumber: 10, Replay: NewMemoryReplay(0), TTL: -1},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("%s: New accepted %+v", name, o)
		}
	}
}

// Challenges made by this package verify with altcha-lib, and its verdict
// on a wrong number and a wrong key is ours. Needs node and web/node_modules
// (make test installs both).
func TestGoChallengesVerifyWithAltchaLib(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed")
	}
	if _, err := os.Stat("../../web/node_modules/altcha-lib"); err != nil {
		t.Skip("web/node_modules/altcha-lib missing: run npm ci in web/")
	}
	const key = "go-made-challenge-key-42"
	v := newVerifier(t, key, 3000)
	other := newVerifier(t, "some-other-key-for-test", 3000)
	now := time.Now()
	type tc struct {
		Payload string `json:"payload"`
		want    bool
	}
	var cases []tc
	for i := 0; i < 4; i++ {
		c, _ := v.Challenge(now)
		p, _, err := Solve(context.Background(), c)
		if err != nil {
			t.Fatal(err)
		}
		cases = append(cases, tc{Payload: p, want: true})
	}
	c, _ := v.Challenge(now)
	p, _, _ := Solve(context.Background(), c)
	var s Solution
	b, _ := decodePayload(p)
	_ = json.Unmarshal(b, &s)
	s.Number++
	cases = append(cases, tc{Payload: Payload(s), want: false})
	c, _ = other.Challenge(now)
	p, _, _ = Solve(context.Background(), c)
	cases = append(cases, tc{Payload: p, want: false})

	in, _ := json.Marshal(map[string]any{"hmacKey": key, "cases": cases})
	cmd := exec.Command(node, filepath.Join("testdata", "verify-go.mjs"))
	cmd.Stdin = bytes.NewReader(in)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node: %v", err)
	}
	var got []bool
	if err := json.Unmarshal(out, &got); err != nil || len(got) != len(cases) {
		t.Fatalf("node said %q (%v)", out, err)
	}
	for i, c := range cases {
		if got[i] != c.want {
			t.Errorf("case %d: altcha-lib says %v, want %v", i, got[i], c.want)
		}
		if ours := v.Verify(context.Background(), c.Payload, now) == nil; ours != c.want {
			t.Errorf("case %d: we say %v, want %v", i, ours, c.want)
		}
	}
}
