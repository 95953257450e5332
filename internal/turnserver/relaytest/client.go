package relaytest

import (
	"net"
	"testing"
	"time"

	"github.com/pion/turn/v5"
)

// Client is a TURN client on a fresh loopback UDP socket (local "127.0.0.1:0"
// or "[::1]:0"), talking to the server at addr with the given credentials
// (realm may be empty: the server's is learnt from its 401). It is closed
// when the test ends.
func Client(t testing.TB, local, addr, user, pass, realm string) *turn.Client {
	t.Helper()
	network := "udp4"
	if local[0] == '[' {
		network = "udp6"
	}
	conn, err := net.ListenPacket(network, local)
	if err != nil {
		t.Fatal(err)
	}
	c, err := turn.NewClient(&turn.ClientConfig{
		STUNServerAddr: addr, TURNServerAddr: addr,
		Username: user, Password: pass, Realm: realm,
		Conn: conn, RTO: 200 * time.Millisecond,
	})
	if err != nil {
		_ = conn.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); _ = conn.Close() })
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	return c
}
