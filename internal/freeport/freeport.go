// Package freeport finds free loopback ports for the servers that tests
// start (redis-server, PostgreSQL, coturn, nodes): one place for what every
// test helper needed, so they all ask the kernel the same way.
//
// A port is free when the call returns; another process may take it before
// the caller binds it, which on a test machine is rare enough to accept.
package freeport

import (
	"net"
	"testing"
)

// TCP returns a TCP port free on 127.0.0.1.
func TCP() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// UDP returns a UDP port free on 127.0.0.1.
func UDP() (int, error) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer pc.Close()
	return pc.LocalAddr().(*net.UDPAddr).Port, nil
}

// MustTCP is TCP for a test: it fails t when no port can be had.
func MustTCP(t testing.TB) int {
	t.Helper()
	return must(t, TCP)
}

// MustUDP is UDP for a test: it fails t when no port can be had.
func MustUDP(t testing.TB) int {
	t.Helper()
	return must(t, UDP)
}

func must(t testing.TB, find func() (int, error)) int {
	t.Helper()
	p, err := find()
	if err != nil {
		t.Fatalf("freeport: %v", err)
	}
	return p
}
