package turnserver

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pion/stun/v4"

	"github.com/strangerchat/stranger/internal/clock"
)

// The vector from docs/protocol.md; coturn computes the same (see
// test/turn for the live check against a real coturn).
func TestMintVector(t *testing.T) {
	user, cred := Mint("change-me", "s_example", time.Unix(1700000000, 0))
	if user != "1700000000:s_example" {
		t.Errorf("username = %q, want 1700000000:s_example", user)
	}
	if cred != "r/2SOstcgLICIzdR5pryb9pybgc=" {
		t.Errorf("credential = %q, want r/2SOstcgLICIzdR5pryb9pybgc=", cred)
	}
}

// integrityOK builds a STUN request signed the way a client holding
// (user, password) signs it, and checks it with the key the verifier hands
// to pion: this is exactly the check pion's server makes.
func integrityOK(t *testing.T, key []byte, user, realm, password string) bool {
	t.Helper()
	msg, err := stun.Build(stun.TransactionID, stun.BindingRequest,
		stun.NewUsername(user), stun.NewRealm(realm), stun.NewNonce("n"),
		stun.NewLongTermIntegrity(user, realm, password))
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	parsed := new(stun.Message)
	if err := stun.Decode(msg.Raw, parsed); err != nil {
		t.Fatalf("decode: %v", err)
	}
	return stun.MessageIntegrity(key).Check(parsed) == nil
}

func TestVerifier(t *testing.T) {
	now := time.Unix(1700000000, 0)
	clk := clock.NewFake(now)
	v := Verifier{Secret: "change-me", Realm: "stranger", Clock: clk}
	user, pass := Mint("change-me", "s_abc", now.Add(time.Hour))

	session, key, err := v.Check(user, "stranger")
	if err != nil {
		t.Fatalf("fresh credential refused: %v", err)
	}
	if session != "s_abc" {
		t.Errorf("session = %q, want s_abc", session)
	}
	if !integrityOK(t, key, user, "stranger", pass) {
		t.Error("MESSAGE-INTEGRITY of a genuine credential does not verify")
	}

	t.Run("forged", func(t *testing.T) {
		_, forged := Mint("guessed-secret", "s_abc", now.Add(time.Hour))
		if integrityOK(t, key, user, "stranger", forged) {
			t.Error("credential minted with another secret verifies")
		}
		// Moving the expiry forward without the secret must not work either.
		longer := strings.Replace(user, "1700003600", "1800000000", 1)
		_, k2, err := v.Check(longer, "stranger")
		if err != nil {
			t.Fatalf("check: %v", err)
		}
		if integrityOK(t, k2, longer, "stranger", pass) {
			t.Error("old password verifies for a username with a later expiry")
		}
	})

	t.Run("expired", func(t *testing.T) {
		clk.Advance(time.Hour) // now == expiry: refused, like coturn
		if _, _, err := v.Check(user, "stranger"); !errors.Is(err, ErrExpired) {
			t.Errorf("err = %v, want ErrExpired", err)
		}
	})

	t.Run("realm", func(t *testing.T) {
		u, _ := Mint("change-me", "s_abc", clk.Now().Add(time.Hour))
		if _, _, err := v.Check(u, "other.example"); !errors.Is(err, ErrRealm) {
			t.Errorf("err = %v, want ErrRealm", err)
		}
		// And the key is bound to the realm: a credential signed for
		// another realm does not verify under ours.
		_, key, err := v.Check(u, "stranger")
		if err != nil {
			t.Fatal(err)
		}
		_, p := Mint("change-me", "s_abc", clk.Now().Add(time.Hour))
		msg, _ := stun.Build(stun.TransactionID, stun.BindingRequest,
			stun.NewLongTermIntegrity(u, "other.example", p))
		if stun.MessageIntegrity(key).Check(msg) == nil {
			t.Error("integrity for another realm verifies")
		}
	})

	t.Run("malformed", func(t *testing.T) {
		for _, u := range []string{"", "s_abc", "abc:s_abc", "1700009999:", "1700009999"} {
			if _, _, err := v.Check(u, "stranger"); !errors.Is(err, ErrMalformedUsername) {
				t.Errorf("Check(%q) err = %v, want ErrMalformedUsername", u, err)
			}
		}
	})
}

func TestICEServers(t *testing.T) {
	now := time.Unix(1700000000, 0)
	c := Credentials{
		STUN:     []string{"stun:turn.example.org:3478"},
		TURNURLs: []string{"turn:turn.example.org:3478?transport=udp", "turn:turn.example.org:3478?transport=tcp"},
		Secret:   "change-me",
		TTL:      time.Hour,
	}
	got := c.ICEServers("s_example", now)
	if len(got) != 2 {
		t.Fatalf("got %d servers, want 2: %+v", len(got), got)
	}
	if got[0].Username != "" || got[0].URLs[0] != "stun:turn.example.org:3478" {
		t.Errorf("stun entry = %+v", got[0])
	}
	wantUser, wantCred := Mint("change-me", "s_example", now.Add(time.Hour))
	if got[1].Username != wantUser || got[1].Credential != wantCred || len(got[1].URLs) != 2 {
		t.Errorf("turn entry = %+v, want user %s cred %s", got[1], wantUser, wantCred)
	}
	// Renewed on every call: a resume later gets a later expiry.
	again := c.ICEServers("s_example", now.Add(time.Minute))
	if again[1].Username == got[1].Username {
		t.Error("credentials not renewed")
	}
	// Mutating the result must not touch the config.
	got[1].URLs[0] = "x"
	if c.TURNURLs[0] == "x" {
		t.Error("ICEServers aliases the configured URL slice")
	}

	if s := (Credentials{TURNURLs: c.TURNURLs}).ICEServers("s", now); len(s) != 0 || s == nil {
		t.Errorf("TURN without secret: got %+v, want empty non-nil", s)
	}
	if (Credentials{TURNURLs: c.TURNURLs}).HasTURN() || !c.HasTURN() {
		t.Error("HasTURN wrong")
	}
}
