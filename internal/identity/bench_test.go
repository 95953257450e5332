package identity

import (
	"net/netip"
	"testing"
)

// BenchmarkHashAddr is what a new session pays to know its person: the
// keyed hash of its address (once per session, at connect).
func BenchmarkHashAddr(b *testing.B) {
	k, err := NewKeyer(make([]byte, 32))
	if err != nil {
		b.Fatal(err)
	}
	addrs := []netip.Addr{netip.MustParseAddr("198.51.100.7"), netip.MustParseAddr("2001:db8::1")}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, ok := k.HashAddr(addrs[i&1]); !ok {
			b.Fatal("not hashed")
		}
		i++
	}
}
