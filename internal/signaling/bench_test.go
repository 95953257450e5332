package signaling

import (
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/strangerchat/stranger/internal/match"
	"github.com/strangerchat/stranger/internal/netpoll"
)

// A trickle candidate as browsers send it, about 200 bytes.
const benchCandidate = `{"type":"signal","room":"%s","data":{"candidate":"candidate:842163049 1 udp 1677729535 203.0.113.7 61432 typ srflx raddr 0.0.0.0 rport 0 generation 0 ufrag 4ZcD network-cost 999","sdpMid":"0","sdpMLineIndex":0}}`

// cpuTime is the process's user+system CPU time: the server and the
// benchmark's clients alike (BenchmarkRelayBare is measured the same way).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// relayWindow is how many frames may be on their way at once: enough to
// keep every stage busy, few enough that the receiver never falls a
// megabyte behind (the hub drops a client that does, as too slow).
const relayWindow = 64

// relayBench sends b.N frames from one client, at most relayWindow ahead
// of the other client's reads, and reports CPU µs per message next to
// ns/op and allocs/op.
func relayBench(b *testing.B, send net.Conn, frame []byte, recv func() error) {
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	errc := make(chan error, 1)
	window := make(chan struct{}, relayWindow)
	b.ResetTimer()
	cpu0 := cpuTime()
	go func() {
		for range b.N {
			window <- struct{}{}
			if _, err := send.Write(frame); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	for range b.N {
		if err := recv(); err != nil {
			b.Fatal(err)
		}
		<-window
	}
	if err := <-errc; err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(time.Microsecond)/float64(b.N), "cpu-µs/msg")
}

// BenchmarkRelaySignal: a candidate from one client of a chat to the other,
// through the hub (both read modes), over loopback WebSockets.
func BenchmarkRelaySignal(b *testing.B) {
	modes := map[string]func(b *testing.B) *netpoll.Poller{
		"goroutine": func(*testing.B) *netpoll.Poller { return nil },
		"poller": func(b *testing.B) *netpoll.Poller {
			p, err := netpoll.New()
			if err != nil {
				b.Skip(err)
			}
			b.Cleanup(func() { _ = p.Close() })
			return p
		},
	}
	for name, poller := range modes {
		b.Run(name, func(b *testing.B) {
			h := New(Options{Poller: poller(b), MsgRate: 1e9, MsgBurst: 1 << 30})
			h.UseEngine(match.NewMemory(match.MemoryConfig{}, h))
			_, dial := serve(b, h)
			a, c, room := matchedPair(b, dial)
			// readType left a 2 s read deadline for the set-up; the timed
			// loop may take longer on a loaded machine.
			_ = c.SetReadDeadline(time.Time{})
			frame := ws.MustCompileFrame(ws.MaskFrame(ws.NewTextFrame([]byte(fmt.Sprintf(benchCandidate, room)))))
			buf := make([]byte, 1024)
			relayBench(b, a.NetConn(), frame, func() error {
				_, r, err := c.NextReader()
				if err != nil {
					return err
				}
				for {
					if _, err := r.Read(buf); err == io.EOF {
						return nil
					} else if err != nil {
						return err
					}
				}
			})
		})
	}
}

// BenchmarkRelayBare is the reference for BenchmarkRelaySignal, run with
// it: the same frames relayed by a bare goroutine that reads each frame
// from one loopback TCP connection and writes it to another — no
// WebSocket, no JSON, no sessions, and no batching: one read and one write
// per frame. On a machine where a syscall costs microseconds this costs
// more CPU per message than the hub, which reads every frame that has
// arrived with one read and writes a partner's pending frames with one
// write; the comparison shows how much the relay's CPU is syscalls.
func BenchmarkRelayBare(b *testing.B) {
	pair := func() (net.Conn, net.Conn) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		defer ln.Close()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		s, err := ln.Accept()
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = c.Close(); _ = s.Close() })
		return c, s
	}
	c1, s1 := pair()
	s2, c2 := pair()
	frame := ws.MustCompileFrame(ws.MaskFrame(ws.NewTextFrame([]byte(fmt.Sprintf(benchCandidate, "r_0123456789abcdef")))))
	go func() {
		in := make([]byte, len(frame))
		for {
			if _, err := io.ReadFull(s1, in); err != nil {
				return
			}
			if _, err := s2.Write(in); err != nil {
				return
			}
		}
	}()
	in := make([]byte, len(frame))
	relayBench(b, c1, frame, func() error { _, err := io.ReadFull(c2, in); return err })
}
