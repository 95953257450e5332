package loadgen

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// srcDialer dials TCP from a list of local source addresses, filling them
// in order: when the kernel has no ephemeral port left on one address
// (EADDRNOTAVAIL), every later dial moves to the next. One IPv4 address
// has about 28k ephemeral ports (net.ipv4.ip_local_port_range), so 50k
// connections to one server need two or more; all of 127.0.0.0/8 is
// loopback on Linux without configuration.
type srcDialer struct {
	addrs []net.IP // empty: let the kernel choose
	cur   atomic.Int32
	used  atomic.Int32 // highest index used + 1
}

// autoSources is the automatic source list for a loopback target.
func autoSources() []net.IP {
	ips := make([]net.IP, 0, 254)
	for i := 1; i <= 254; i++ {
		ips = append(ips, net.IPv4(127, 0, 0, byte(i)))
	}
	return ips
}

// newSrcDialer uses the given addresses, or, when none are given and every
// target is an IPv4 loopback address, 127.0.0.1, 127.0.0.2, ...
func newSrcDialer(src []string, urls []string) *srcDialer {
	d := &srcDialer{}
	for _, s := range src {
		d.addrs = append(d.addrs, net.ParseIP(s))
	}
	if len(d.addrs) == 0 && allLoopback4(urls) {
		d.addrs = autoSources()
	}
	return d
}

func allLoopback4(urls []string) bool {
	for _, u := range urls {
		p, err := url.Parse(u)
		if err != nil {
			return false
		}
		ip := net.ParseIP(p.Hostname())
		if ip == nil || ip.To4() == nil || !ip.IsLoopback() {
			return false
		}
	}
	return len(urls) > 0
}

var errSourcesExhausted = errors.New("all source addresses out of ephemeral ports")

// bindNoPort sets IP_BIND_ADDRESS_NO_PORT, so binding the source address
// does not reserve a port yet: connect picks one unique for the whole
// 4-tuple, and the ~28k ports of one source address are available per
// destination instead of shared by all of them.
func bindNoPort(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
	})
	if err != nil {
		return err
	}
	return serr
}

// DialContext is a websocket.Dialer.NetDialContext.
func (d *srcDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if len(d.addrs) == 0 {
		var nd net.Dialer
		return nd.DialContext(ctx, network, addr)
	}
	for {
		i := d.cur.Load()
		if int(i) >= len(d.addrs) {
			return nil, errSourcesExhausted
		}
		nd := net.Dialer{LocalAddr: &net.TCPAddr{IP: d.addrs[i]}, Control: bindNoPort, KeepAlive: -1}
		c, err := nd.DialContext(ctx, network, addr)
		if err == nil {
			for {
				u := d.used.Load()
				if u > i || d.used.CompareAndSwap(u, i+1) {
					break
				}
			}
			return c, nil
		}
		if errors.Is(err, syscall.EADDRNOTAVAIL) || errors.Is(err, syscall.EADDRINUSE) {
			d.cur.CompareAndSwap(i, i+1) // another dial may have moved on already
			continue
		}
		return nil, fmt.Errorf("dial from %v: %w", d.addrs[i], err)
	}
}

// sourcesUsed is how many source addresses have carried a connection.
func (d *srcDialer) sourcesUsed() int { return int(d.used.Load()) }

// dialTimeout bounds connect plus WebSocket handshake plus welcome.
const dialTimeout = 10 * time.Second
