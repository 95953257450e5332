package clientip

import (
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func request(peer string, xff ...string) *http.Request {
	r, _ := http.NewRequest("GET", "/ws", nil)
	r.RemoteAddr = peer
	for _, v := range xff {
		r.Header.Add("X-Forwarded-For", v)
	}
	return r
}

func resolver(t *testing.T, trusted ...string) (*Resolver, *prometheus.Registry) {
	t.Helper()
	p, err := ParsePrefixes(trusted)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	return New(p, reg), reg
}

func TestIP(t *testing.T) {
	for _, tc := range []struct {
		name    string
		trusted []string
		peer    string
		xff     []string
		want    string
		ignored string // the reason counted, if any
	}{
		{"no proxy trusted: the peer", nil, "192.0.2.7:5000", []string{"203.0.113.1"}, "192.0.2.7", "untrusted_peer"},
		{"no header", []string{"10.0.0.0/8"}, "10.0.0.2:5000", nil, "10.0.0.2", ""},
		{"untrusted peer forging the header", []string{"127.0.0.1/32"}, "127.0.0.2:5000", []string{"198.51.100.9"}, "127.0.0.2", "untrusted_peer"},
		{"one trusted proxy", []string{"127.0.0.1/32"}, "127.0.0.1:5000", []string{"198.51.100.9"}, "198.51.100.9", ""},
		{"forged left-most entry", []string{"127.0.0.1"}, "127.0.0.1:5000", []string{"1.2.3.4, 198.51.100.9"}, "198.51.100.9", ""},
		{"two trusted proxies", []string{"127.0.0.1/32", "10.0.0.0/8"}, "127.0.0.1:5000", []string{"6.6.6.6, 198.51.100.9, 10.1.2.3"}, "198.51.100.9", ""},
		{"header split over lines", []string{"127.0.0.1/32", "10.0.0.0/8"}, "127.0.0.1:5000", []string{"6.6.6.6, 198.51.100.9", "10.1.2.3"}, "198.51.100.9", ""},
		{"garbage right of the client", []string{"127.0.0.1/32"}, "127.0.0.1:5000", []string{"198.51.100.9, bogus"}, "127.0.0.1", "malformed"},
		{"empty entry", []string{"127.0.0.1/32"}, "127.0.0.1:5000", []string{"198.51.100.9,"}, "127.0.0.1", "malformed"},
		{"garbage left of the client is never read", []string{"127.0.0.1/32"}, "127.0.0.1:5000", []string{"bogus, 198.51.100.9"}, "198.51.100.9", ""},
		{"all trusted: the left-most", []string{"127.0.0.0/8"}, "127.0.0.1:5000", []string{"127.0.0.5, 127.0.0.3"}, "127.0.0.5", ""},
		{"entry with a port", []string{"127.0.0.1/32"}, "127.0.0.1:5000", []string{"198.51.100.9:443"}, "198.51.100.9", ""},
		{"IPv6 peer and client", []string{"::1/128"}, "[::1]:5000", []string{"2001:db8::5"}, "2001:db8::5", ""},
		{"IPv4-mapped peer", []string{"127.0.0.1/32"}, "[::ffff:127.0.0.1]:5000", []string{"::ffff:198.51.100.9"}, "198.51.100.9", ""},
		{"mapped prefix", []string{"::ffff:127.0.0.1/128"}, "127.0.0.1:5000", []string{"198.51.100.9"}, "198.51.100.9", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, reg := resolver(t, tc.trusted...)
			if got := res.IP(request(tc.peer, tc.xff...)); got != tc.want {
				t.Fatalf("IP = %q, want %q", got, tc.want)
			}
			for _, reason := range []string{"untrusted_peer", "malformed"} {
				want := 0.0
				if reason == tc.ignored {
					want = 1
				}
				if got := value(t, res.counter(reason)); got != want {
					t.Errorf("ignored{%s} = %v, want %v", reason, got, want)
				}
			}
			if n := series(t, reg, "stranger_forwarded_for_ignored_total"); n != 2 {
				t.Errorf("%d series of stranger_forwarded_for_ignored_total, want 2 (both reasons from the start)", n)
			}
		})
	}
}

func value(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func series(t *testing.T, reg *prometheus.Registry, name string) int {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return len(mf.GetMetric())
		}
	}
	return 0
}

func (res *Resolver) counter(reason string) prometheus.Counter {
	if reason == "malformed" {
		return res.malformed
	}
	return res.untrusted
}

func TestParsePrefixes(t *testing.T) {
	got, err := ParsePrefixes([]string{"10.1.2.3/8", " 192.0.2.1 ", "::1", "2001:db8::/32"})
	if err != nil {
		t.Fatal(err)
	}
	var s []string
	for _, p := range got {
		s = append(s, p.String())
	}
	if want := "10.0.0.0/8 192.0.2.1/32 ::1/128 2001:db8::/32"; strings.Join(s, " ") != want {
		t.Fatalf("ParsePrefixes = %s, want %s", strings.Join(s, " "), want)
	}
	for _, bad := range []string{"10.0.0.0/33", "example.com", "", "fe80::1%eth0"} {
		if _, err := ParsePrefixes([]string{bad}); err == nil || !strings.Contains(err.Error(), "CIDR") {
			t.Errorf("ParsePrefixes(%q): err = %v, want a clear error", bad, err)
		}
	}
}
