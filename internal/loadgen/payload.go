package loadgen

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
)

// payloads holds the pre-encoded pieces of the frames a client sends, built
// once per process so a send is a few appends into a pooled buffer.
type payloads struct {
	offerSDP  []byte   // JSON-encoded string, quotes included
	answerSDP []byte   // JSON-encoded string, quotes included
	cands     [][]byte // JSON objects: RTCIceCandidateInit
	chats     []string // chat texts (after the timestamp prefix)
}

// numCandidates is how many trickle candidates each side sends, like a
// browser on a machine with a few interfaces.
const numCandidates = 6

func newPayloads(rng *rand.Rand) *payloads {
	p := &payloads{
		offerSDP:  mustJSON(makeSDP(rng, "offer")),
		answerSDP: mustJSON(makeSDP(rng, "answer")),
		chats: []string{
			"hey! where are you from?",
			"haha nice, I'm from somewhere near the sea. what do you do?",
			"cool, I mostly play games and listen to music these days",
			"what are you listening to lately?",
			"ok I have to go soon, nice talking to you :)",
		},
	}
	ufrag := randToken(rng, 4)
	for i := range numCandidates {
		proto, prio, typ := "udp", 2122260223-i*256, "host"
		if i%3 == 2 {
			proto, prio = "tcp", 1518280447-i*256
		}
		line := fmt.Sprintf("candidate:%d 1 %s %d 127.0.0.1 %d typ %s", 1000000000+rng.IntN(1000000000), proto, prio, 50000+rng.IntN(10000), typ)
		if proto == "tcp" {
			line += " tcptype passive"
		}
		line += " generation 0 ufrag " + ufrag + " network-id " + strconv.Itoa(1+i%3)
		c, err := json.Marshal(struct {
			Candidate     string `json:"candidate"`
			SDPMid        string `json:"sdpMid"`
			SDPMLineIndex int    `json:"sdpMLineIndex"`
		}{line, "0", 0})
		if err != nil {
			panic(err) // cannot fail for this fixed shape
		}
		p.cands = append(p.cands, c)
	}
	return p
}

func mustJSON(s string) []byte {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err) // a string always marshals
	}
	return b
}

func randToken(rng *rand.Rand, n int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/"
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[rng.IntN(len(alphabet))]
	}
	return string(b)
}

func fingerprint(rng *rand.Rand) string {
	parts := make([]string, 32)
	for i := range parts {
		parts[i] = fmt.Sprintf("%02X", rng.IntN(256))
	}
	return strings.Join(parts, ":")
}

// makeSDP returns a session description shaped like the one a desktop
// Chrome creates for one audio and one video track (about 4 KB, CRLF lines),
// so the relay moves frames of realistic size.
func makeSDP(rng *rand.Rand, kind string) string {
	setup := "actpass"
	if kind == "answer" {
		setup = "active"
	}
	ufrag, pwd, fp := randToken(rng, 4), randToken(rng, 24), fingerprint(rng)
	msid := randToken(rng, 36)
	var b strings.Builder
	w := func(lines ...string) {
		for _, l := range lines {
			b.WriteString(l)
			b.WriteString("\r\n")
		}
	}
	w("v=0",
		fmt.Sprintf("o=- %d 2 IN IP4 127.0.0.1", 1000000000000000000+rng.Int64N(8000000000000000000)),
		"s=-", "t=0 0", "a=group:BUNDLE 0 1", "a=extmap-allow-mixed",
		"a=msid-semantic: WMS "+msid)
	media := func(mid, kind string, pts []string, maps []string, ssrc int64) {
		w("m="+kind+" 9 UDP/TLS/RTP/SAVPF "+strings.Join(pts, " "),
			"c=IN IP4 0.0.0.0", "a=rtcp:9 IN IP4 0.0.0.0",
			"a=ice-ufrag:"+ufrag, "a=ice-pwd:"+pwd, "a=ice-options:trickle",
			"a=fingerprint:sha-256 "+fp, "a=setup:"+setup, "a=mid:"+mid)
		if kind == "audio" {
			w("a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level",
				"a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
				"a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
				"a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid")
		} else {
			w("a=extmap:14 urn:ietf:params:rtp-hdrext:toffset",
				"a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
				"a=extmap:13 urn:3gpp:video-orientation",
				"a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
				"a=extmap:5 http://www.webrtc.org/experiments/rtp-hdrext/playout-delay",
				"a=extmap:6 http://www.webrtc.org/experiments/rtp-hdrext/video-content-type",
				"a=extmap:7 http://www.webrtc.org/experiments/rtp-hdrext/video-timing",
				"a=extmap:8 http://www.webrtc.org/experiments/rtp-hdrext/color-space",
				"a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid",
				"a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id",
				"a=extmap:11 urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id")
		}
		w("a=sendrecv", "a=msid:"+msid+" "+randToken(rng, 36), "a=rtcp-mux")
		if kind == "video" {
			w("a=rtcp-rsize")
		}
		w(maps...)
		cname := randToken(rng, 16)
		w(fmt.Sprintf("a=ssrc:%d cname:%s", ssrc, cname), fmt.Sprintf("a=ssrc:%d msid:%s", ssrc, msid))
	}
	media("0", "audio", []string{"111", "63", "9", "0", "8", "13", "110", "126"}, []string{
		"a=rtpmap:111 opus/48000/2", "a=rtcp-fb:111 transport-cc",
		"a=fmtp:111 minptime=10;useinbandfec=1",
		"a=rtpmap:63 red/48000/2", "a=fmtp:63 111/111",
		"a=rtpmap:9 G722/8000", "a=rtpmap:0 PCMU/8000", "a=rtpmap:8 PCMA/8000",
		"a=rtpmap:13 CN/8000", "a=rtpmap:110 telephone-event/48000", "a=rtpmap:126 telephone-event/8000",
	}, 1000000000+rng.Int64N(3000000000))
	var pts, maps []string
	codecs := []struct{ name, fmtp string }{
		{"VP8", ""}, {"VP9", "profile-id=0"}, {"VP9", "profile-id=2"},
		{"H264", "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f"},
		{"H264", "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"},
		{"AV1", "level-idx=5;profile=0;tier=0"},
	}
	pt := 96
	for _, c := range codecs {
		p, rtx := strconv.Itoa(pt), strconv.Itoa(pt+1)
		pts = append(pts, p, rtx)
		maps = append(maps, "a=rtpmap:"+p+" "+c.name+"/90000",
			"a=rtcp-fb:"+p+" goog-remb", "a=rtcp-fb:"+p+" transport-cc",
			"a=rtcp-fb:"+p+" ccm fir", "a=rtcp-fb:"+p+" nack", "a=rtcp-fb:"+p+" nack pli")
		if c.fmtp != "" {
			maps = append(maps, "a=fmtp:"+p+" "+c.fmtp)
		}
		maps = append(maps, "a=rtpmap:"+rtx+" rtx/90000", "a=fmtp:"+rtx+" apt="+p)
		pt += 2
	}
	media("1", "video", pts, maps, 1000000000+rng.Int64N(3000000000))
	return b.String()
}
