package loadgen

import (
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestParseServerFrames(t *testing.T) {
	tests := []struct {
		in   string
		want func(*serverFrame) bool
	}{
		{`{"type":"waiting","seq":1}`, func(f *serverFrame) bool { return string(f.typ) == "waiting" && f.seq == 1 && f.hasSeq }},
		{` { "seq" : 7 , "type" : "matched", "room":"r_\"x", "initiator" : true, "mode":"video","commonInterests":["a","b"]} `,
			func(f *serverFrame) bool {
				return string(f.typ) == "matched" && f.seq == 7 && f.initiator && string(f.room) == `"r_\"x"`
			}},
		{`{"type":"matched","seq":2,"room":"r1","initiator":false,"commonInterests":[]}`,
			func(f *serverFrame) bool { return !f.initiator && string(f.room) == `"r1"` }},
		{`{"type":"signal","seq":3,"room":"r1","data":{"t":12,"sdp":{"type":"offer","sdp":"v=0\r\n}{]["}}}`,
			func(f *serverFrame) bool {
				return string(f.typ) == "signal" && string(f.data) == `{"t":12,"sdp":{"type":"offer","sdp":"v=0\r\n}{]["}}`
			}},
		{`{"type":"chat","seq":4,"text":"1700000000123 hi \"there\""}`, func(f *serverFrame) bool { return string(f.text) == `"1700000000123 hi \"there\""` }},
		{`{"type":"error","seq":5,"code":"rate_limited","message":"slow down"}`, func(f *serverFrame) bool { return string(f.code) == "rate_limited" }},
		{`{"type":"peer_left","seq":6,"reason":"next"}`, func(f *serverFrame) bool { return string(f.reason) == "next" }},
		{`{"type":"welcome","session":"s","iceServers":[{"urls":["stun:x"]}],"online":3,"resumed":false}`,
			func(f *serverFrame) bool { return string(f.typ) == "welcome" && !f.hasSeq }},
	}
	for _, tt := range tests {
		var f serverFrame
		if err := parseServerFrame([]byte(tt.in), &f); err != nil {
			t.Errorf("%s: %v", tt.in, err)
			continue
		}
		if !tt.want(&f) {
			t.Errorf("%s: parsed %+v", tt.in, f)
		}
	}
}

func TestParseServerFrameRejects(t *testing.T) {
	for _, in := range []string{
		``, `[]`, `"x"`, `{`, `{"type":"x"`, `{"type":1}`, `{"seq":1}`, `{"type":"x","seq":"1"}`,
		`{"type":"x",}`, `{"type" "x"}`, `{"type":"x","data":{"a":"}`, `{"type":"x" "seq":1}`, `{"type":"x","seq":}`,
	} {
		var f serverFrame
		if err := parseServerFrame([]byte(in), &f); err == nil {
			t.Errorf("%q: accepted as %+v", in, f)
		}
	}
}

// The scanner must agree with encoding/json on what the members are, for
// any object encoding/json writes.
func TestScanObjectAgreesWithEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for range 500 {
		obj := map[string]any{}
		for range rng.IntN(6) {
			obj[randKey(rng)] = randValue(rng, 3)
		}
		b, err := json.Marshal(obj)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		if err := scanObject(b, func(k, v []byte) { got[string(k)] = string(v) }); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if len(got) != len(obj) {
			t.Fatalf("%s: %d members, want %d", b, len(got), len(obj))
		}
		for k, v := range obj {
			want, _ := json.Marshal(v)
			kk, _ := json.Marshal(k)
			if g := got[string(kk[1:len(kk)-1])]; g != string(want) {
				t.Fatalf("%s: member %s = %s, want %s", b, k, g, want)
			}
		}
	}
}

func randKey(rng *rand.Rand) string {
	return []string{"type", "seq", "a\"b", "c\\d", "é", "data", "x y"}[rng.IntN(7)]
}

func randValue(rng *rand.Rand, depth int) any {
	switch k := rng.IntN(7); {
	case k == 0:
		return nil
	case k == 1:
		return rng.IntN(2) == 0
	case k == 2:
		return rng.Float64() * 1e6
	case k == 3 || depth == 0:
		return strings.Repeat(`x"}]{[\`, rng.IntN(3)) + "\u2028\n"
	case k == 4 || k == 5:
		m := map[string]any{}
		for range rng.IntN(4) {
			m[randKey(rng)] = randValue(rng, depth-1)
		}
		return m
	default:
		var a []any
		for range rng.IntN(4) {
			a = append(a, randValue(rng, depth-1))
		}
		return a
	}
}

func TestParseSignalData(t *testing.T) {
	var d signalData
	if err := parseSignalData([]byte(`{"t":1700000000000000001,"candidate":null}`), &d); err != nil || d.t != 1700000000000000001 || !d.candidate || !d.endOfCand || d.sdp {
		t.Fatalf("end of candidates: %+v %v", d, err)
	}
	if err := parseSignalData([]byte(`{"candidate":{"candidate":"candidate:1 1 udp 1 127.0.0.1 5 typ host","sdpMid":"0","sdpMLineIndex":0},"t":5}`), &d); err != nil || d.t != 5 || !d.candidate || d.endOfCand {
		t.Fatalf("candidate: %+v %v", d, err)
	}
	if err := parseSignalData([]byte(`{"sdp":{"type":"answer","sdp":"v=0"}}`), &d); err != nil || d.t != 0 || !d.sdp {
		t.Fatalf("sdp without t: %+v %v", d, err)
	}
	if err := parseSignalData([]byte(`"not an object"`), &d); err == nil {
		t.Fatal("a string is not signal data")
	}
}

func TestLeadingInt(t *testing.T) {
	for in, want := range map[string]int64{`"123 hi"`: 123, `"1700000000000000000"`: 1700000000000000000, `"0"`: 0} {
		if got, ok := leadingInt([]byte(in)); !ok || got != want {
			t.Errorf("leadingInt(%s) = %d, %v", in, got, ok)
		}
	}
	for _, in := range []string{`"hi 123"`, `""`, `123`, ``} {
		if _, ok := leadingInt([]byte(in)); ok {
			t.Errorf("leadingInt(%s) accepted", in)
		}
	}
}

func TestParseServerFrameDoesNotAllocate(t *testing.T) {
	b := []byte(`{"type":"signal","seq":3,"room":"r1","data":{"t":12,"candidate":null}}`)
	var f serverFrame
	var d signalData
	allocs := testing.AllocsPerRun(100, func() {
		if parseServerFrame(b, &f) != nil || parseSignalData(f.data, &d) != nil {
			t.Fatal("parse failed")
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per frame", allocs)
	}
}
