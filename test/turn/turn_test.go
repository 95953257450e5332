package turn_test

import (
	"context"
	"errors"
	"net"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/stun/v4"
	"github.com/pion/webrtc/v4"

	"github.com/strangerchat/stranger/internal/turnserver"
	"github.com/strangerchat/stranger/internal/turnserver/relaytest"
)

func iceServers(port int, session string, now time.Time) []webrtc.ICEServer {
	creds := turnserver.Credentials{
		TURNURLs: []string{"turn:127.0.0.1:" + strconv.Itoa(port) + "?transport=udp"},
		Secret:   secret,
		TTL:      time.Hour,
	}
	var out []webrtc.ICEServer
	for _, s := range creds.ICEServers(session, now) {
		out = append(out, webrtc.ICEServer{URLs: s.URLs, Username: s.Username, Credential: s.Credential})
	}
	return out
}

// A relay-only pion call through a real coturn, with credentials minted by
// turnserver.Mint: the node can hand out credentials for an external coturn
// configured with use-auth-secret.
func TestPionCallThroughCoturn(t *testing.T) {
	c := startCoturn(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := relaytest.ConnectRelayOnly(ctx, iceServers(c.Port, "s_coturn", time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range res.Pairs {
		if p != "relay/relay" {
			t.Errorf("peer %d selected %s, want relay/relay", i, p)
		}
	}
	t.Logf("relay-only call through coturn connected in %v", res.Connected)
}

// coturn applies the same rules to our credentials as the embedded server:
// fresh ones allocate, expired and forged ones get 401.
func TestCoturnChecksMintedCredentials(t *testing.T) {
	c := startCoturn(t, "")
	addr := "127.0.0.1:" + strconv.Itoa(c.Port)
	allocate := func(user, pass string) error {
		cl := relaytest.Client(t, "127.0.0.1:0", addr, user, pass, "")
		relay, err := cl.Allocate()
		if err == nil {
			_ = relay.Close()
		}
		return err
	}
	unauthorized := func(err error) bool {
		var te *stun.TurnError
		return errors.As(err, &te) && te.ErrorCodeAttr.Code == stun.CodeUnauthorized
	}

	if err := allocate(turnserver.Mint(secret, "s_fresh", time.Now().Add(time.Hour))); err != nil {
		t.Errorf("fresh credential: %v", err)
	}
	if err := allocate(turnserver.Mint(secret, "s_old", time.Now().Add(-time.Minute))); !unauthorized(err) {
		t.Errorf("expired credential: err = %v, want 401", err)
	}
	user, _ := turnserver.Mint(secret, "s_forged", time.Now().Add(time.Hour))
	_, forged := turnserver.Mint("another-secret-0123456789", "s_forged", time.Now().Add(time.Hour))
	if err := allocate(user, forged); !unauthorized(err) {
		t.Errorf("forged credential: err = %v, want 401", err)
	}
}

var (
	recvMsgs = regexp.MustCompile(`tot_recv_msgs=(\d+)`)
	lost     = regexp.MustCompile(`Total lost packets (\d+)`)
)

// coturn's own load client allocates on the embedded server with fresh
// credentials (ours, or minted by uclient itself from the secret) and relays
// between two clients; expired and wrong credentials cannot allocate.
func TestUclientAgainstEmbedded(t *testing.T) {
	s := startEmbedded(t, true)
	port := s.Port()
	// -y: the two clients (-m 2) send to each other's relay address, so no
	// peer process is needed; -c: no RTCP allocation pair.
	common := []string{"-y", "-c", "-m", "2", "-n", "20", "-l", "200", "-z", "5"}

	ok := func(t *testing.T, out string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("uclient failed: %v\n%s", err, out)
		}
		m := recvMsgs.FindAllStringSubmatch(out, -1)
		if len(m) == 0 {
			t.Fatalf("no tot_recv_msgs in output:\n%s", out)
		}
		if n, _ := strconv.Atoi(m[len(m)-1][1]); n < 40 {
			t.Errorf("received %d messages, want 40:\n%s", n, out)
		}
		if l := lost.FindStringSubmatch(out); l == nil || l[1] != "0" {
			t.Errorf("lost packets reported:\n%s", out)
		}
	}
	refused := func(t *testing.T, out string, err error) {
		t.Helper()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || !strings.Contains(out, "Cannot complete Allocation") {
			t.Fatalf("uclient with bad credentials: err = %v, want a failed allocation; output:\n%s", err, out)
		}
	}

	// uclient lingers a few seconds after its last packet; run the
	// successful ones side by side.
	t.Run("allocates", func(t *testing.T) {
		t.Run("minted credential", func(t *testing.T) {
			t.Parallel()
			user, pass := turnserver.Mint(secret, "s_uclient", time.Now().Add(time.Hour))
			out, err := uclient(t, port, append(common, "-u", user, "-w", pass)...)
			ok(t, out, err)
		})
		t.Run("TURN over TCP", func(t *testing.T) {
			t.Parallel()
			// -t: client to server over TCP (turn:...?transport=tcp); the
			// relay itself stays UDP.
			user, pass := turnserver.Mint(secret, "s_tcp", time.Now().Add(time.Hour))
			out, err := uclient(t, port, append(common, "-t", "-u", user, "-w", pass)...)
			ok(t, out, err)
		})
		t.Run("REST secret", func(t *testing.T) {
			t.Parallel()
			// uclient mints "<expiry>:s_rest" itself from the secret.
			out, err := uclient(t, port, append(common, "-u", "s_rest", "-W", secret)...)
			ok(t, out, err)
		})
	})
	before := s.Stats().AuthRefused
	t.Run("expired credential", func(t *testing.T) {
		user, pass := turnserver.Mint(secret, "s_uclient", time.Now().Add(-time.Second))
		out, err := uclient(t, port, append(common, "-u", user, "-w", pass)...)
		refused(t, out, err)
	})
	t.Run("wrong password", func(t *testing.T) {
		user, _ := turnserver.Mint(secret, "s_uclient", time.Now().Add(time.Hour))
		out, err := uclient(t, port, append(common, "-u", user, "-w", "r/2SOstcgLICIzdR5pryb9pybgc=")...)
		refused(t, out, err)
	})
	t.Run("wrong secret", func(t *testing.T) {
		out, err := uclient(t, port, append(common, "-u", "s_rest", "-W", "not-our-secret-0123456789")...)
		refused(t, out, err)
	})
	if s.Stats().AuthRefused <= before {
		t.Errorf("AuthRefused did not grow: %+v", s.Stats())
	}
}

// uclient's default mode asks for an RTP/RTCP pair (EVEN-PORT and
// RESERVATION-TOKEN); the embedded server with its default single socket
// supports it.
func TestUclientPortPairAgainstEmbedded(t *testing.T) {
	s := startEmbedded(t, true)
	user, pass := turnserver.Mint(secret, "s_pair", time.Now().Add(time.Hour))
	out, err := uclient(t, s.Port(), "-y", "-m", "2", "-n", "5", "-u", user, "-w", pass)
	if err != nil || lost.FindStringSubmatch(out) == nil {
		t.Fatalf("uclient with RTCP pairs: %v\n%s", err, out)
	}
}

// With the default policy (no loopback), uclient's relay to the other
// client's 127.0.0.1 relay address is refused at CreatePermission.
func TestUclientLoopbackPeerRefused(t *testing.T) {
	s := startEmbedded(t, false)
	user, pass := turnserver.Mint(secret, "s_loop", time.Now().Add(time.Hour))
	out, _ := uclient(t, s.Port(), "-y", "-c", "-m", "2", "-n", "5", "-u", user, "-w", pass)
	if m := recvMsgs.FindAllStringSubmatch(out, -1); len(m) > 0 && m[len(m)-1][1] != "0" {
		t.Errorf("messages relayed to a loopback peer:\n%s", out)
	}
	if s.Stats().PermissionsDenied == 0 {
		t.Errorf("no permission refused: %+v\n%s", s.Stats(), out)
	}
}

func TestStunclientAgainstEmbedded(t *testing.T) {
	s := startEmbedded(t, false)
	bin := requireBinary(t, "turnutils_stunclient")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "-p", strconv.Itoa(s.Port()), "127.0.0.1").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "UDP reflexive addr: 127.0.0.1:") {
		t.Fatalf("stunclient: %v\n%s", err, out)
	}
}

// deploy/turnserver.conf, run by a real coturn, refuses permissions to the
// same kinds of peers as the embedded relay. Only CreatePermission requests
// are made: no packet is sent to any of these addresses.
func TestSampleCoturnConfigDeniesPrivatePeers(t *testing.T) {
	c := startCoturn(t, "../../deploy/turnserver.conf")
	addr := "127.0.0.1:" + strconv.Itoa(c.Port)
	user, pass := turnserver.Mint(secret, "s_sample", time.Now().Add(time.Hour))
	cl := relaytest.Client(t, "127.0.0.1:0", addr, user, pass, "")
	relay, err := cl.Allocate()
	if err != nil {
		t.Fatalf("allocate with the sample config: %v", err)
	}
	defer relay.Close()

	forbidden := func(err error) bool {
		var te *stun.TurnError
		return errors.As(err, &te) && te.ErrorCodeAttr.Code == stun.CodeForbidden
	}
	for _, ip := range []string{
		"127.0.0.1", "10.0.0.1", "172.16.0.1", "192.168.1.1", "100.64.0.1",
		"169.254.169.254", "0.0.0.0", "224.0.0.1", "255.255.255.255", "198.18.0.1",
	} {
		err := cl.CreatePermission(&net.UDPAddr{IP: net.ParseIP(ip), Port: 9})
		if !forbidden(err) {
			t.Errorf("sample coturn config: permission to %s: err = %v, want 403", ip, err)
		}
		// The embedded relay's default policy agrees.
		if (turnserver.PeerPolicy{}).Allowed(net.ParseIP(ip)) {
			t.Errorf("embedded policy allows %s", ip)
		}
	}
	if err := cl.CreatePermission(&net.UDPAddr{IP: net.ParseIP("8.8.8.8"), Port: 9}); err != nil {
		t.Errorf("sample coturn config: permission to a public address: %v", err)
	}
}
