package turnserver

import (
	"errors"
	"net"
	"testing"
)

func TestPeerPolicy(t *testing.T) {
	cases := []struct {
		ip       string
		denied   bool // with the default policy
		loopback bool // opened by AllowLoopback
	}{
		// Globally routable unicast: allowed.
		{"8.8.8.8", false, false},
		{"1.1.1.1", false, false},
		{"93.184.216.34", false, false},
		{"2606:4700:4700::1111", false, false},
		{"2a00:1450:4001::1", false, false},
		{"::ffff:8.8.8.8", false, false},
		{"64:ff9b::808:808", false, false}, // NAT64 of 8.8.8.8

		// Loopback.
		{"127.0.0.1", true, true},
		{"127.255.255.254", true, true},
		{"::1", true, true},
		{"::ffff:127.0.0.1", true, true},

		// RFC 1918.
		{"10.0.0.1", true, false},
		{"10.255.255.255", true, false},
		{"172.16.0.1", true, false},
		{"172.31.255.255", true, false},
		{"192.168.1.1", true, false},
		{"::ffff:10.0.0.1", true, false},
		{"::ffff:192.168.0.1", true, false},
		// Just outside RFC 1918 stays allowed.
		{"172.15.255.255", false, false},
		{"172.32.0.0", false, false},
		{"11.0.0.1", false, false},

		// CGNAT, link-local, metadata.
		{"100.64.0.1", true, false},
		{"100.127.255.255", true, false},
		{"100.100.100.200", true, false}, // Alibaba metadata
		{"100.63.255.255", false, false},
		{"100.128.0.0", false, false},
		{"169.254.0.1", true, false},
		{"169.254.169.254", true, false}, // AWS/GCP/Azure metadata
		{"::ffff:169.254.169.254", true, false},
		{"fd00:ec2::254", true, false}, // AWS IPv6 metadata
		{"fe80::1", true, false},
		{"febf:ffff::1", true, false},

		// ULA, site-local.
		{"fc00::1", true, false},
		{"fdff:ffff::1", true, false},
		{"fec0::1", true, false},

		// Multicast, broadcast, unspecified, reserved.
		{"224.0.0.1", true, false},
		{"239.255.255.250", true, false},
		{"ff02::1", true, false},
		{"ff0e::1", true, false},
		{"255.255.255.255", true, false},
		{"240.0.0.1", true, false},
		{"0.0.0.0", true, false},
		{"0.1.2.3", true, false},
		{"::", true, false},
		{"::10.0.0.1", true, false}, // IPv4-compatible (deprecated)

		// Special purpose.
		{"192.0.0.170", true, false},
		{"198.18.0.1", true, false},
		{"192.0.2.1", true, false},
		{"2001:db8::1", true, false},
		{"100::1", true, false},
		{"64:ff9b::a00:1", true, false},     // NAT64 of 10.0.0.1
		{"64:ff9b::7f00:1", true, false},    // NAT64 of 127.0.0.1: never opened
		{"64:ff9b:1::808:808", true, false}, // local-use NAT64 prefix
	}
	for _, c := range cases {
		ip := net.ParseIP(c.ip)
		if ip == nil {
			t.Fatalf("bad test address %q", c.ip)
		}
		// Both representations pion may hand us: 16-byte and 4-byte.
		forms := []net.IP{ip}
		if v4 := ip.To4(); v4 != nil {
			forms = append(forms, v4)
		}
		for _, form := range forms {
			err := PeerPolicy{}.Check(form)
			if got := err != nil; got != c.denied {
				t.Errorf("default policy, %s (len %d): denied=%v, want %v (err %v)", c.ip, len(form), got, c.denied, err)
			}
			if err != nil && !errors.Is(err, ErrPeerDenied) {
				t.Errorf("%s: error %v does not wrap ErrPeerDenied", c.ip, err)
			}
			wantLoop := c.denied && !c.loopback
			if got := !(PeerPolicy{AllowLoopback: true}).Allowed(form); got != wantLoop {
				t.Errorf("AllowLoopback, %s: denied=%v, want %v", c.ip, got, wantLoop)
			}
		}
	}

	for _, bad := range []net.IP{nil, {1, 2, 3}} {
		if (PeerPolicy{AllowLoopback: true}).Allowed(bad) {
			t.Errorf("malformed %v allowed", bad)
		}
	}
}
