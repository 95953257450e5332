// Package relaytest connects two pion/webrtc peers through a TURN server,
// relay-only, so the embedded TURN (internal/turnserver) and a real coturn
// (test/turn) are proven by the same client code. It is imported only by
// tests.
package relaytest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
)

// Result describes a completed relay-only call.
type Result struct {
	// Connected is the time from creating the offer to both data channel
	// messages having arrived.
	Connected time.Duration
	// Pairs holds the selected candidate pair of each peer, "local/remote"
	// candidate types, e.g. "relay/relay".
	Pairs [2]string
}

// api builds a pion API that keeps every packet on loopback: only lo, UDP4,
// no mDNS, and no 2 s wait before settling on a relay pair.
func api() *webrtc.API {
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetRelayAcceptanceMinWait(0)
	return webrtc.NewAPI(webrtc.WithSettingEngine(se))
}

// ConnectRelayOnly opens two peer connections with iceTransportPolicy
// "relay" using servers, negotiates in process (complete SDP, no trickle),
// and sends one data channel message each way.
func ConnectRelayOnly(ctx context.Context, servers []webrtc.ICEServer) (res Result, err error) {
	a := api()
	conf := webrtc.Configuration{ICEServers: servers, ICETransportPolicy: webrtc.ICETransportPolicyRelay}
	offerer, err := a.NewPeerConnection(conf)
	if err != nil {
		return res, fmt.Errorf("offerer: %w", err)
	}
	defer func() { err = errors.Join(err, offerer.Close()) }()
	answerer, err := a.NewPeerConnection(conf)
	if err != nil {
		return res, fmt.Errorf("answerer: %w", err)
	}
	defer func() { err = errors.Join(err, answerer.Close()) }()

	got := make(chan string, 2)
	answerer.OnDataChannel(func(dc *webrtc.DataChannel) {
		dc.OnMessage(func(m webrtc.DataChannelMessage) { got <- "answerer got " + string(m.Data) })
		dc.OnOpen(func() { _ = dc.SendText("pong") })
	})
	dc, err := offerer.CreateDataChannel("chat", nil)
	if err != nil {
		return res, fmt.Errorf("data channel: %w", err)
	}
	dc.OnMessage(func(m webrtc.DataChannelMessage) { got <- "offerer got " + string(m.Data) })
	dc.OnOpen(func() { _ = dc.SendText("ping") })

	start := time.Now()
	if err := negotiate(ctx, offerer, answerer); err != nil {
		return res, err
	}
	want := map[string]bool{"answerer got ping": true, "offerer got pong": true}
	for len(want) > 0 {
		select {
		case m := <-got:
			if !want[m] {
				return res, fmt.Errorf("unexpected message %q", m)
			}
			delete(want, m)
		case <-ctx.Done():
			return res, fmt.Errorf("waiting for data channel messages (offerer ICE %s, answerer ICE %s): %w",
				offerer.ICEConnectionState(), answerer.ICEConnectionState(), ctx.Err())
		}
	}
	res.Connected = time.Since(start)
	for i, pc := range []*webrtc.PeerConnection{offerer, answerer} {
		pair, err := pc.SCTP().Transport().ICETransport().GetSelectedCandidatePair()
		if err != nil || pair == nil {
			return res, fmt.Errorf("selected pair of peer %d: %v", i, err)
		}
		res.Pairs[i] = pair.Local.Typ.String() + "/" + pair.Remote.Typ.String()
	}
	return res, nil
}

// negotiate runs offer/answer with complete descriptions: on loopback
// gathering a relay candidate takes milliseconds, and it spares the test
// from holding early trickled candidates.
func negotiate(ctx context.Context, offerer, answerer *webrtc.PeerConnection) error {
	describe := func(pc *webrtc.PeerConnection, sdp webrtc.SessionDescription) (*webrtc.SessionDescription, error) {
		done := webrtc.GatheringCompletePromise(pc)
		if err := pc.SetLocalDescription(sdp); err != nil {
			return nil, fmt.Errorf("set local description: %w", err)
		}
		select {
		case <-done:
		case <-ctx.Done():
			return nil, fmt.Errorf("gathering candidates: %w", ctx.Err())
		}
		return pc.LocalDescription(), nil
	}
	offer, err := offerer.CreateOffer(nil)
	if err != nil {
		return fmt.Errorf("create offer: %w", err)
	}
	full, err := describe(offerer, offer)
	if err != nil {
		return fmt.Errorf("offerer: %w", err)
	}
	if err := answerer.SetRemoteDescription(*full); err != nil {
		return fmt.Errorf("answerer: set remote description: %w", err)
	}
	answer, err := answerer.CreateAnswer(nil)
	if err != nil {
		return fmt.Errorf("create answer: %w", err)
	}
	full, err = describe(answerer, answer)
	if err != nil {
		return fmt.Errorf("answerer: %w", err)
	}
	if err := offerer.SetRemoteDescription(*full); err != nil {
		return fmt.Errorf("offerer: set remote description: %w", err)
	}
	return nil
}
