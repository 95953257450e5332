package freeport

import (
	"net"
	"strconv"
	"testing"
)

// The ports returned can be bound at once, on their protocol.
func TestPortsCanBeBound(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(MustTCP(t)))
	if err != nil {
		t.Fatalf("TCP port not free: %v", err)
	}
	l.Close()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:"+strconv.Itoa(MustUDP(t)))
	if err != nil {
		t.Fatalf("UDP port not free: %v", err)
	}
	pc.Close()
}
