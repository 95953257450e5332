// Command peer is one side of a call in the simulated internet of
// test/netsim: it joins through a Stranger node's WebSocket, negotiates a
// pion/webrtc data channel with whoever it is matched with (offer and
// answer relayed as `signal` frames, ICE servers from the node), sends a
// message and waits for the partner's, then prints the path ICE chose as
// one JSON line. With -browser it drives headless Chromium through the same
// exchange instead (browser.go). It runs inside a network namespace,
// started by the test.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
)

// Result is what the test reads.
type Result struct {
	Name          string `json:"name"`
	LocalType     string `json:"localType"`     // host, srflx, prflx, relay
	RemoteType    string `json:"remoteType"`    // idem
	RelayProtocol string `json:"relayProtocol"` // udp, tcp or tls when LocalType is relay
	Local         string `json:"local"`
	Remote        string `json:"remote"`
	Got           string `json:"got"` // the partner's message
	Millis        int64  `json:"ms"`  // matched to partner's message
}

// doneText is the chat line a peer sends when it has read its path.
const doneText = "done"

// settle is how long a peer stays in the call after the partner's message
// before it reads the path ICE settled on.
const settle = 3 * time.Second

// gatherWait bounds candidate gathering before the description is sent.
const gatherWait = 5 * time.Second

type iceServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username"`
	Credential string   `json:"credential"`
}

type frame struct {
	Type       string          `json:"type"`
	Room       string          `json:"room"`
	Initiator  bool            `json:"initiator"`
	ICEServers []iceServer     `json:"iceServers"`
	Data       json.RawMessage `json:"data"`
	Code       string          `json:"code"`
	Text       string          `json:"text"`
	Message    string          `json:"message"`
}

type signalData struct {
	SDP *webrtc.SessionDescription `json:"sdp,omitempty"`
}

func main() {
	url := flag.String("ws", "", "the node's WebSocket URL")
	name := flag.String("name", "peer", "this peer's name in messages and the result")
	interest := flag.String("interest", "", "an interest only the intended partner shares")
	timeout := flag.Duration("timeout", 60*time.Second, "give up after this long")
	browser := flag.String("browser", "", "drive this Chromium through the call instead of calling with pion")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	var res Result
	var err error
	if *browser != "" {
		res, err = runBrowser(ctx, *browser, *url, *name, *interest)
	} else {
		res, err = run(ctx, *url, *name, *interest)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "peer %s: %v\n", *name, err)
		os.Exit(1)
	}
	_ = json.NewEncoder(os.Stdout).Encode(res)
}

func run(ctx context.Context, url, name, interest string) (Result, error) {
	res := Result{Name: name}
	ws, _, err := websocket.DefaultDialer.DialContext(ctx, url, nil)
	if err != nil {
		return res, fmt.Errorf("dial %s: %w", url, err)
	}
	defer ws.Close()
	go func() { <-ctx.Done(); _ = ws.Close() }()
	frames := make(chan frame, 16)
	readErr := make(chan error, 1)
	go func() {
		for {
			var f frame
			if err := ws.ReadJSON(&f); err != nil {
				readErr <- err
				return
			}
			frames <- f
		}
	}()
	next := func() (frame, error) {
		select {
		case f := <-frames:
			if f.Type == "error" {
				return f, fmt.Errorf("node refused a frame: %s %s", f.Code, f.Message)
			}
			return f, nil
		case err := <-readErr:
			return frame{}, err
		case <-ctx.Done():
			return frame{}, ctx.Err()
		}
	}
	seq := 0
	send := func(m map[string]any) error {
		seq++
		m["seq"] = seq
		return ws.WriteJSON(m)
	}

	welcome, err := next()
	if err != nil || welcome.Type != "welcome" {
		return res, fmt.Errorf("welcome: %+v %v", welcome, err)
	}
	join := map[string]any{"type": "join", "mode": "text"}
	if interest != "" {
		join["interests"] = []string{interest}
	}
	if err := send(join); err != nil {
		return res, err
	}
	var matched frame
	for matched.Type != "matched" {
		if matched, err = next(); err != nil {
			return res, fmt.Errorf("waiting for a match: %w", err)
		}
	}
	start := time.Now()
	servers := matched.ICEServers // protocol 1.1: credentials come with the match
	if len(servers) == 0 {
		servers = welcome.ICEServers
	}
	conf := webrtc.Configuration{}
	for _, s := range servers {
		conf.ICEServers = append(conf.ICEServers, webrtc.ICEServer{URLs: s.URLs, Username: s.Username, Credential: s.Credential})
	}

	var se webrtc.SettingEngine
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeTCP4})
	pc, err := webrtc.NewAPI(webrtc.WithSettingEngine(se)).NewPeerConnection(conf)
	if err != nil {
		return res, err
	}
	defer pc.Close()

	got := make(chan string, 1)
	onChannel := func(dc *webrtc.DataChannel) {
		dc.OnOpen(func() { _ = dc.SendText("hello from " + name) })
		dc.OnMessage(func(m webrtc.DataChannelMessage) {
			select {
			case got <- string(m.Data):
			default:
			}
		})
	}
	pc.OnDataChannel(onChannel)

	// Complete descriptions (candidates gathered first): fewer frames to
	// relay. Behind a firewall that drops TCP SYNs, gathering a TURN/TCP
	// candidate waits for the kernel's connect timeout (minutes); what was
	// gathered in the first seconds is all a browser would use as well.
	describe := func(sdp webrtc.SessionDescription) error {
		done := webrtc.GatheringCompletePromise(pc)
		if err := pc.SetLocalDescription(sdp); err != nil {
			return err
		}
		select {
		case <-done:
		case <-time.After(gatherWait):
		case <-ctx.Done():
			return ctx.Err()
		}
		return send(map[string]any{"type": "signal", "room": matched.Room, "data": signalData{SDP: pc.LocalDescription()}})
	}
	if matched.Initiator {
		dc, err := pc.CreateDataChannel("chat", nil)
		if err != nil {
			return res, err
		}
		onChannel(dc)
		offer, err := pc.CreateOffer(nil)
		if err != nil {
			return res, err
		}
		if err := describe(offer); err != nil {
			return res, fmt.Errorf("offer: %w", err)
		}
	}
	for res.Got == "" {
		select {
		case m := <-got:
			res.Got = m
			continue
		default:
		}
		var f frame
		select {
		case m := <-got:
			res.Got = m
			continue
		case f = <-frames:
		case err := <-readErr:
			return res, err
		case <-ctx.Done():
			return res, fmt.Errorf("no message from the partner (ICE %s): %w", pc.ICEConnectionState(), ctx.Err())
		}
		switch f.Type {
		case "signal":
			var d signalData
			if err := json.Unmarshal(f.Data, &d); err != nil || d.SDP == nil {
				return res, fmt.Errorf("signal without sdp: %s", f.Data)
			}
			if err := pc.SetRemoteDescription(*d.SDP); err != nil {
				return res, err
			}
			if d.SDP.Type == webrtc.SDPTypeOffer {
				answer, err := pc.CreateAnswer(nil)
				if err != nil {
					return res, err
				}
				if err := describe(answer); err != nil {
					return res, fmt.Errorf("answer: %w", err)
				}
			}
		case "peer_left":
			return res, errors.New("the partner left before a message came through")
		case "error":
			return res, fmt.Errorf("node: %s %s", f.Code, f.Message)
		}
	}
	res.Millis = time.Since(start).Milliseconds()
	// Read the path after a settle time: ICE may start on a relay pair that
	// became usable first and switch to a better one (browsers do), and the
	// partner's message must land before either side closes.
	time.Sleep(settle)
	if err := selectedPath(pc, &res); err != nil {
		return res, err
	}
	// Close only when the partner has read its path too: a side that
	// leaves first ends the other's call under it.
	if err := send(map[string]any{"type": "chat", "text": doneText}); err != nil {
		return res, err
	}
	for {
		f, err := next()
		if err != nil {
			return res, fmt.Errorf("waiting for the partner to finish: %w", err)
		}
		switch {
		case f.Type == "chat" && f.Text == doneText:
			return res, nil
		case f.Type == "peer_left":
			return res, errors.New("the partner left before it finished")
		}
	}
}

// selectedPath fills the candidate types and relay protocol of the pair
// ICE nominated, from the peer connection's stats.
func selectedPath(pc *webrtc.PeerConnection, res *Result) error {
	stats := pc.GetStats()
	for _, s := range stats {
		p, ok := s.(webrtc.ICECandidatePairStats)
		if !ok || !p.Nominated || p.State != webrtc.StatsICECandidatePairStateSucceeded {
			continue
		}
		l, lok := stats[p.LocalCandidateID].(webrtc.ICECandidateStats)
		r, rok := stats[p.RemoteCandidateID].(webrtc.ICECandidateStats)
		if !lok || !rok {
			continue
		}
		res.LocalType, res.RemoteType = l.CandidateType.String(), r.CandidateType.String()
		res.RelayProtocol = l.RelayProtocol
		res.Local = fmt.Sprintf("%s %s:%d", l.Protocol, l.IP, l.Port)
		res.Remote = fmt.Sprintf("%s %s:%d", r.Protocol, r.IP, r.Port)
		return nil
	}
	return errors.New("no nominated candidate pair in the stats")
}
