package protocol

import (
	"strings"
	"testing"
)

// offerFrame builds a realistic signal frame carrying an SDP offer of about
// size bytes: the SDP is one JSON string full of \r\n escapes, as browsers
// send it.
func offerFrame(size int) []byte {
	var sdp strings.Builder
	sdp.WriteString(`v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\na=extmap-allow-mixed\r\na=msid-semantic: WMS stream\r\n`)
	lines := []string{
		`m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126\r\n`,
		`c=IN IP4 0.0.0.0\r\n`,
		`a=rtcp:9 IN IP4 0.0.0.0\r\n`,
		`a=ice-ufrag:Xq3b\r\n`,
		`a=ice-pwd:9vXJ8cS0mDq2oDk0ZkA0Lh7W\r\n`,
		`a=fingerprint:sha-256 7B:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:DC:B8:5F:64:1A:24:C2:43:F0:A1:58:D0:A1:2C:19:08\r\n`,
		`a=setup:actpass\r\n`,
		`a=rtpmap:111 opus/48000/2\r\n`,
		`a=rtcp-fb:111 transport-cc\r\n`,
		`a=fmtp:111 minptime=10;useinbandfec=1\r\n`,
		`a=ssrc:3735928559 cname:4TOk42mSjXCkVIa6\r\n`,
	}
	for i := 0; sdp.Len() < size-120; i++ {
		sdp.WriteString(lines[i%len(lines)])
	}
	return []byte(`{"type":"signal","seq":42,"room":"r_8f3a2c1d9e","data":{"sdp":{"type":"offer","sdp":"` + sdp.String() + `"}}}`)
}

var candidateFrame = []byte(`{"type":"signal","seq":43,"room":"r_8f3a2c1d9e","data":{"candidate":{"candidate":"candidate:842163049 1 udp 1677729535 203.0.113.7 46154 typ srflx raddr 0.0.0.0 rport 0","sdpMid":"0","sdpMLineIndex":0}}}`)

var chatFrame = []byte(`{"type":"chat","seq":44,"text":"  hey, where are you from? \u00e9t\u00e9 \n"}`)

func benchDecode(b *testing.B, in []byte) {
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	var f Frame
	for b.Loop() {
		if err := Decode(in, &f); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeSignalOffer4K(b *testing.B) {
	in := offerFrame(4096)
	if len(in) < 4000 || len(in) > 4200 {
		b.Fatalf("offer frame is %d bytes", len(in))
	}
	benchDecode(b, in)
}

func BenchmarkDecodeSignalCandidate(b *testing.B) { benchDecode(b, candidateFrame) }

func BenchmarkDecodeChat(b *testing.B) { benchDecode(b, chatFrame) }

func BenchmarkAppendSignal(b *testing.B) {
	var f Frame
	if err := Decode(offerFrame(4096), &f); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(f.Data)))
	buf := make([]byte, 0, 64)
	for b.Loop() {
		buf = AppendSignal(buf[:0], 43, f.Room, f.Data)
	}
}
