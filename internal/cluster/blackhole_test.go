package cluster_test

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/strangerchat/stranger/internal/cluster"
)

// proxy forwards loopback TCP to a Redis; Blackhole makes every connection
// open so far go silent (nothing forwarded, nothing closed), as a dead peer
// behind a NAT or a cut cable looks; new connections work.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	gen    int
	conns  []net.Conn
}

func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			gen := p.gen
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			pipe := func(dst, src net.Conn) {
				buf := make([]byte, 32<<10)
				for {
					n, err := src.Read(buf)
					if err != nil {
						return
					}
					p.mu.Lock()
					silent := p.gen != gen
					p.mu.Unlock()
					if silent {
						continue // swallowed: the peer hears nothing, forever
					}
					if _, err := dst.Write(buf[:n]); err != nil {
						return
					}
				}
			}
			go pipe(up, c)
			go pipe(c, up)
		}
	}()
	return p
}

func (p *proxy) Addr() string { return p.ln.Addr().String() }

func (p *proxy) Blackhole() {
	p.mu.Lock()
	p.gen++
	p.mu.Unlock()
}

// TestSubscriptionSilentlyDead: the subscription's connection goes silent
// without being closed; the node notices that its pings get no answer,
// subscribes again on a new connection and says so (Local.Resubscribed), and
// messages flow again.
func TestSubscriptionSilentlyDead(t *testing.T) {
	addr := startRedis(t)
	px := startProxy(t, addr)
	opt := &redis.Options{Addr: px.Addr()}
	cluster.Tune(opt)
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	l := &local{}
	n := cluster.NewNode(cluster.Config{Client: rdb, Prefix: "p:", HeartbeatEvery: 50 * time.Millisecond, HeartbeatTTL: 150 * time.Millisecond, Local: l})
	var got atomic.Int64
	n.Handle('x', func([]byte) { got.Add(1) })
	resub := &l.resub
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	direct := redis.NewClient(&redis.Options{Addr: addr})
	defer direct.Close()
	publish := func() {
		if err := direct.Publish(ctx, cluster.ChannelName("p:", n.ID()), "x").Err(); err != nil {
			t.Fatal(err)
		}
	}
	publish()
	deadline := time.Now().Add(10 * time.Second)
	for got.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	px.Blackhole()
	for resub.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the silent subscription was never replaced")
		}
		time.Sleep(50 * time.Millisecond)
	}
	before := got.Load()
	publish()
	for got.Load() == before {
		if time.Now().After(deadline) {
			t.Fatal("no message after resubscribing")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
