package identity

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
)

var testKey = []byte("0123456789abcdef")

func keyer(t *testing.T, key []byte) *Keyer {
	t.Helper()
	k, err := NewKeyer(key)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func hashOf(t *testing.T, k *Keyer, ip string) Hash {
	t.Helper()
	h, ok := k.HashAddr(netip.MustParseAddr(ip))
	if !ok {
		t.Fatalf("HashAddr(%s) not ok", ip)
	}
	return h
}

// The hash is HMAC-SHA256(key, canonical prefix), hex, first 16 characters.
// The expected values were computed outside Go (Python's hmac module), so
// the test pins the definition, not this implementation.
func TestHashVectors(t *testing.T) {
	k := keyer(t, testKey)
	for _, tc := range []struct{ ip, want string }{
		{"203.0.113.7", "87b9a1bea2e0f7d3"},          // "203.0.113.7/32"
		{"::ffff:203.0.113.7", "87b9a1bea2e0f7d3"},   // mapped: the IPv4 identity
		{"2001:db8:1:2::1", "d343c704f159dfee"},      // "2001:db8:1:2::/64"
		{"2001:db8:1:2:ffff::9", "d343c704f159dfee"}, // same /64
		{"2001:db8:1:2::1%eth0", "d343c704f159dfee"}, // zone ignored
	} {
		if got := hashOf(t, k, tc.ip); string(got) != tc.want {
			t.Errorf("hash(%s) = %s, want %s", tc.ip, got, tc.want)
		}
	}
}

func TestSameAndDifferentIdentities(t *testing.T) {
	k := keyer(t, testKey)
	tests := []struct {
		name string
		a, b string
		same bool
	}{
		{"two addresses of one /64", "2001:db8:aa:bb::1", "2001:db8:aa:bb:1234:5678:9abc:def0", true},
		{"neighbouring /64s", "2001:db8:aa:bb::1", "2001:db8:aa:bc::1", false},
		{"differ in bit 64 only", "2001:db8:aa:bb::1", "2001:db8:aa:ba::1", false},
		{"differ in bit 65 only", "2001:db8:aa:bb::1", "2001:db8:aa:bb:8000::1", true},
		{"IPv4 and its mapped form", "198.51.100.20", "::ffff:198.51.100.20", true},
		{"neighbouring IPv4 addresses", "198.51.100.20", "198.51.100.21", false},
		{"loopback v4 addresses differ", "127.0.0.2", "127.0.0.3", false},
		{"IPv4 and the IPv4-compatible IPv6 differ", "198.51.100.20", "::198.51.100.20", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ha, hb := hashOf(t, k, tc.a), hashOf(t, k, tc.b)
			if (ha == hb) != tc.same {
				t.Fatalf("hash(%s)=%s hash(%s)=%s, same=%v want %v", tc.a, ha, tc.b, hb, ha == hb, tc.same)
			}
		})
	}
}

func TestKeyMatters(t *testing.T) {
	a := hashOf(t, keyer(t, testKey), "203.0.113.7")
	b := hashOf(t, keyer(t, []byte("fedcba9876543210")), "203.0.113.7")
	if a == b {
		t.Fatalf("two keys give the same hash %s", a)
	}
	// The Keyer copies its key: changing the caller's slice changes nothing.
	key := bytes.Clone(testKey)
	k := keyer(t, key)
	key[0] ^= 0xff
	if got := hashOf(t, k, "203.0.113.7"); got != a {
		t.Fatalf("hash changed with the caller's key slice: %s, want %s", got, a)
	}
}

func TestNewKeyerShortKey(t *testing.T) {
	for _, n := range []int{0, 1, MinKeyBytes - 1} {
		if _, err := NewKeyer(make([]byte, n)); err == nil {
			t.Errorf("NewKeyer with %d bytes: no error", n)
		}
	}
	if _, err := NewKeyer(make([]byte, MinKeyBytes)); err != nil {
		t.Errorf("NewKeyer with %d bytes: %v", MinKeyBytes, err)
	}
}

func TestInvalidAddr(t *testing.T) {
	k := keyer(t, testKey)
	if _, ok := FromAddr(netip.Addr{}); ok {
		t.Fatal("FromAddr(zero) ok")
	}
	if _, ok := k.HashAddr(netip.Addr{}); ok {
		t.Fatal("HashAddr(zero) ok")
	}
	defer func() {
		if recover() == nil {
			t.Fatal("Hash(zero Identity) did not panic")
		}
	}()
	k.Hash(Identity{})
}

// Neither a Hash nor an Identity, printed in any way a log line or an API
// answer might, shows the address or the prefix it came from.
func TestNoRawAddressInOutput(t *testing.T) {
	k := keyer(t, testKey)
	for _, ip := range []string{"203.0.113.7", "::ffff:203.0.113.7", "2001:db8:1:2::1", "10.0.0.1"} {
		addr := netip.MustParseAddr(ip)
		id, _ := FromAddr(addr)
		h := k.Hash(id)
		var logged bytes.Buffer
		slog.New(slog.NewTextHandler(&logged, nil)).Info("x", "id", id, "hash", h)
		slog.New(slog.NewJSONHandler(&logged, nil)).Info("x", "id", id, "hash", h)
		outputs := []string{
			h.String(), fmt.Sprint(h), fmt.Sprintf("%v %+v %#v %s %q %x", h, h, h, h, h, h),
			id.String(), fmt.Sprint(id), fmt.Sprintf("%v %+v %#v %s %q", id, id, id, id, id),
			fmt.Sprintf("%v %+v", struct{ ID Identity }{id}, []Identity{id}),
			logged.String(),
		}
		// The address in every spelling that could leak: as given, unmapped,
		// the /64's prefix, and the canonical text that is hashed.
		leaks := []string{ip, addr.Unmap().String(), id.canonical(), strings.TrimSuffix(id.canonical(), "/64")}
		for _, out := range outputs {
			for _, leak := range leaks {
				if strings.Contains(out, leak) {
					t.Errorf("output %q shows %q", out, leak)
				}
			}
		}
		if len(h) != HashLen {
			t.Errorf("hash %q has %d characters, want %d", h, len(h), HashLen)
		}
		if _, err := ParseHash(string(h)); err != nil {
			t.Errorf("ParseHash(%q): %v", h, err)
		}
	}
}

func TestParseHash(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"87b9a1bea2e0f7d3", true},
		{"87B9A1BEA2E0F7D3", false}, // Keyer writes lower case only
		{"87b9a1bea2e0f7d", false},
		{"87b9a1bea2e0f7d30", false},
		{"87b9a1bea2e0f7dg", false},
		{"203.0.113.7/32xx", false},
		{"", false},
	} {
		_, err := ParseHash(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("ParseHash(%q) = %v, want ok=%v", tc.in, err, tc.ok)
		}
	}
}
