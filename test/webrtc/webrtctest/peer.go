// Package webrtctest is a stranger for system tests: a pion/webrtc peer that
// has nothing but a WebSocket to a Stranger node. It speaks the signaling
// protocol of docs/protocol.md through a wsclient.Client (seq numbers,
// resume with re-sending), and on `matched` it negotiates a call by itself
// — the initiator opens a data channel and sends the offer, the other side
// answers, both trickle ICE candidates through `signal` — so a test only
// sends `join`, waits for Connected and checks what it cares about.
//
// Every peer keeps its packets on loopback (interface lo, UDP4, no mDNS), so
// tests need no network namespace and never touch another interface. The
// same peer works relay-only through a TURN server (Options.RelayOnly), so
// TURN-through-signaling and multi-node tests reuse it.
//
// One Peer carries one call: a second `matched` is recorded as an error.
package webrtctest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"

	"github.com/strangerchat/stranger/test/wsclient"
)

// Options configure a Peer. The zero value is a loopback peer that uses the
// ICE servers of welcome.
type Options struct {
	// Name labels the peer in transcripts and errors ("peer" if empty).
	Name string
	// Header is sent with the WebSocket handshake (e.g. an Origin).
	Header http.Header
	// ICEServers, when non-nil, replace the servers of matched (or, from a
	// 1.0 server, of welcome) in the peer connection's configuration.
	ICEServers []webrtc.ICEServer
	// RelayOnly sets iceTransportPolicy "relay": only relay candidates are
	// gathered and paired, so the call must go through a TURN server.
	RelayOnly bool
	// RelayAcceptanceMinWait is how long pion waits before it settles on a
	// relay pair. With RelayOnly it is always applied (0: no wait; pion's
	// default is about 2 s); otherwise only when positive.
	RelayAcceptanceMinWait time.Duration
	// Label of the data channel the initiator opens ("chat" if empty).
	Label string
	// AfterSignal, when set, runs right after the peer sent one of its own
	// signal frames: kind is "offer", "answer", "candidate" or "end"
	// (the null end-of-candidates), seq the frame's seq. It runs on the
	// peer's signaling path before any later signal is sent, so a test can
	// cut the socket at an exact point (Drop). It must not call Resume or
	// Close.
	AfterSignal func(p *Peer, kind string, seq int64)
}

// Frame is one server frame as received.
type Frame = wsclient.Frame

// ICEServer is one entry of welcome.iceServers. `urls` may be a string or
// an array, as in the browser's RTCIceServer.
type ICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

// UnmarshalJSON accepts urls as a string or an array of strings.
func (s *ICEServer) UnmarshalJSON(b []byte) error {
	var raw struct {
		URLs       json.RawMessage `json:"urls"`
		Username   string          `json:"username"`
		Credential string          `json:"credential"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	s.Username, s.Credential, s.URLs = raw.Username, raw.Credential, nil
	var one string
	if err := json.Unmarshal(raw.URLs, &one); err == nil {
		s.URLs = []string{one}
		return nil
	}
	if err := json.Unmarshal(raw.URLs, &s.URLs); err != nil {
		return fmt.Errorf("iceServers urls: %w", err)
	}
	return nil
}

// Chat is the payload of `matched`, and welcome.chat on a resume.
type Chat struct {
	Room            string   `json:"room"`
	Initiator       bool     `json:"initiator"`
	Mode            string   `json:"mode"`
	CommonInterests []string `json:"commonInterests"`
	// ICEServers is the chat's list, TURN credentials included (protocol
	// 1.1); nil from a 1.0 server, whose welcome carries them.
	ICEServers []ICEServer `json:"iceServers"`
}

// Welcome is the first frame of every connection.
type Welcome struct {
	Session     string      `json:"session"`
	ResumeToken string      `json:"resumeToken"`
	Resumed     bool        `json:"resumed"`
	ICEServers  []ICEServer `json:"iceServers"`
	Online      int         `json:"online"`
	State       string      `json:"state"`
	Chat        *Chat       `json:"chat"`
	LastSeq     *int64      `json:"lastSeq"`
}

// WebRTC converts the servers for a pion configuration.
func (w Welcome) WebRTC() []webrtc.ICEServer { return toWebRTC(w.ICEServers) }

func toWebRTC(servers []ICEServer) []webrtc.ICEServer {
	out := make([]webrtc.ICEServer, 0, len(servers))
	for _, s := range servers {
		out = append(out, webrtc.ICEServer{URLs: s.URLs, Username: s.Username, Credential: s.Credential})
	}
	return out
}

// Msg is a client frame; Send adds its seq.
type Msg map[string]any

// ResumeResult is what a resume did.
type ResumeResult struct {
	Welcome Welcome
	// Resent are the seqs of the client frames sent again because the
	// server had not processed them (seq > welcome.lastSeq).
	Resent []int64
}

// Peer is one stranger: a signaling client with a pion peer connection.
type Peer struct {
	name string
	opts Options
	api  *webrtc.API

	// client numbers the frames, keeps them for a resume and checks the
	// server's seq.
	client *wsclient.Client

	// sigMu orders this peer's own signals: the description first, then the
	// candidates in the order pion gathered them.
	sigMu        sync.Mutex
	descSent     bool
	pendingLocal []*webrtc.ICECandidate // gathered before the description was sent; nil = end

	mu            sync.Mutex
	welcome       Welcome
	readDone      chan struct{} // closed when the current read loop ends
	closeErr      error         // how the last socket ended
	closed        bool
	frames        []Frame // for Recv
	framesReady   chan struct{}
	data          []string // data channel messages, for RecvData
	dataReady     chan struct{}
	log           []string
	chat          *Chat
	pc            *webrtc.PeerConnection
	dc            *webrtc.DataChannel
	remoteSet     bool
	pendingRemote []*webrtc.ICECandidateInit // nil = end of candidates
	err           error

	connected     chan struct{}
	connectedOnce sync.Once
	gathered      chan struct{}
	gatheredOnce  sync.Once
	failed        chan struct{}
	failOnce      sync.Once
	start         time.Time
}

// NewPeer dials wsURL (ws://host:port/ws) and reads the welcome; the peer is
// closed when the test ends. It fails the test on error, so call it from the
// test's goroutine.
func NewPeer(ctx context.Context, t testing.TB, wsURL string, opts Options) *Peer {
	t.Helper()
	p, err := Dial(ctx, wsURL, opts)
	if err != nil {
		t.Fatalf("webrtctest: %v", err)
	}
	t.Cleanup(p.Close)
	return p
}

// Dial is NewPeer for callers that manage the peer's lifetime: they must
// call Close.
func Dial(ctx context.Context, wsURL string, opts Options) (*Peer, error) {
	if opts.Name == "" {
		opts.Name = "peer"
	}
	if opts.Label == "" {
		opts.Label = "chat"
	}
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	if opts.RelayOnly || opts.RelayAcceptanceMinWait > 0 {
		se.SetRelayAcceptanceMinWait(opts.RelayAcceptanceMinWait)
	}
	p := &Peer{
		name:        opts.Name,
		opts:        opts,
		api:         webrtc.NewAPI(webrtc.WithSettingEngine(se)),
		framesReady: make(chan struct{}, 1),
		dataReady:   make(chan struct{}, 1),
		connected:   make(chan struct{}),
		gathered:    make(chan struct{}),
		failed:      make(chan struct{}),
		start:       time.Now(),
	}
	c, err := wsclient.Connect(ctx, wsURL, wsclient.Options{
		DialOptions: wsclient.DialOptions{Header: opts.Header},
		Log:         p.note,
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p.name, err)
	}
	p.record("<", c.Welcome())
	var w Welcome
	if err := c.Welcome().Decode(&w); err != nil {
		c.Conn().Release()
		return nil, fmt.Errorf("%s: welcome: %w", p.name, err)
	}
	p.client = c
	p.mu.Lock()
	p.welcome = w
	p.mu.Unlock()
	p.startReading(c.Conn())
	return p, nil
}

func (p *Peer) startReading(conn *wsclient.Conn) {
	done := make(chan struct{})
	p.mu.Lock()
	p.readDone = done
	p.mu.Unlock()
	go p.readLoop(conn, done)
}

// readLoop handles the frames of one connection in order until it ends. A
// seq that does not follow the last one is an error of the server: the peer
// fails and the frame is not handled.
func (p *Peer) readLoop(conn *wsclient.Conn, done chan struct{}) {
	defer close(done)
	for {
		f, err := conn.Next(context.Background())
		if errors.Is(err, wsclient.ErrBadFrame) {
			p.fail(err)
		}
		if errors.Is(err, wsclient.ErrClosed) {
			p.note("socket ended: %v", err)
			p.mu.Lock()
			p.closeErr = conn.Err()
			p.mu.Unlock()
			return
		}
		if f != nil {
			p.record("<", f)
		}
		if err != nil {
			p.fail(err)
			continue
		}
		p.handle(f)
	}
}

// handle processes one server frame: it runs the call on matched/signal
// and queues the rest for Recv.
func (p *Peer) handle(f Frame) {
	switch f.Type() {
	case "matched":
		var c Chat
		if err := f.Decode(&c); err != nil {
			p.fail(fmt.Errorf("matched: %w", err))
			break
		}
		if err := p.startCall(c); err != nil {
			p.fail(err)
		}
	case "signal":
		if err := p.onSignal(f); err != nil {
			p.fail(err)
		}
		return // the call consumed it
	}
	p.mu.Lock()
	p.frames = append(p.frames, f)
	p.mu.Unlock()
	notify(p.framesReady)
}

func notify(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// startCall creates the peer connection of a match; the initiator opens the
// data channel and sends the offer.
func (p *Peer) startCall(c Chat) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	if p.chat != nil {
		p.mu.Unlock()
		return fmt.Errorf("second matched (room %s) while in room %s: one call per Peer", c.Room, p.chat.Room)
	}
	p.chat = &c
	servers := p.opts.ICEServers
	switch {
	case servers != nil:
	case c.ICEServers != nil: // protocol 1.1: the credentials come with the match
		servers = toWebRTC(c.ICEServers)
	default: // a 1.0 server
		servers = p.welcome.WebRTC()
	}
	p.mu.Unlock()

	conf := webrtc.Configuration{ICEServers: servers}
	if p.opts.RelayOnly {
		conf.ICETransportPolicy = webrtc.ICETransportPolicyRelay
	}
	pc, err := p.api.NewPeerConnection(conf)
	if err != nil {
		return fmt.Errorf("new peer connection: %w", err)
	}
	p.mu.Lock()
	p.pc = pc
	p.mu.Unlock()
	pc.OnICECandidate(p.onLocalCandidate)
	pc.OnICEConnectionStateChange(func(s webrtc.ICEConnectionState) {
		p.note("ICE %s", s)
		if s == webrtc.ICEConnectionStateFailed {
			p.fail(errors.New("ICE failed"))
		}
	})
	if !c.Initiator {
		pc.OnDataChannel(p.useDataChannel)
		return nil
	}
	dc, err := pc.CreateDataChannel(p.opts.Label, nil)
	if err != nil {
		return fmt.Errorf("create data channel: %w", err)
	}
	p.useDataChannel(dc)
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return fmt.Errorf("create offer: %w", err)
	}
	if err := pc.SetLocalDescription(offer); err != nil {
		return fmt.Errorf("set local offer: %w", err)
	}
	return p.sendDescription(offer)
}

func (p *Peer) useDataChannel(dc *webrtc.DataChannel) {
	p.mu.Lock()
	p.dc = dc
	p.mu.Unlock()
	dc.OnOpen(func() {
		p.note("data channel %q open", dc.Label())
		p.connectedOnce.Do(func() { close(p.connected) })
	})
	dc.OnMessage(func(m webrtc.DataChannelMessage) {
		p.mu.Lock()
		p.data = append(p.data, string(m.Data))
		p.mu.Unlock()
		notify(p.dataReady)
	})
}

// sendDescription sends the local SDP, then the candidates pion gathered
// before it: a candidate must never reach the partner before the SDP.
func (p *Peer) sendDescription(d webrtc.SessionDescription) error {
	p.sigMu.Lock()
	defer p.sigMu.Unlock()
	seq, err := p.signal(map[string]any{"sdp": d})
	if err != nil {
		return err
	}
	p.descSent = true
	p.after(d.Type.String(), seq)
	pending := p.pendingLocal
	p.pendingLocal = nil
	for _, c := range pending {
		if err := p.sendCandidate(c); err != nil {
			return err
		}
	}
	return nil
}

func (p *Peer) onLocalCandidate(c *webrtc.ICECandidate) {
	p.sigMu.Lock()
	defer p.sigMu.Unlock()
	if !p.descSent {
		p.pendingLocal = append(p.pendingLocal, c)
		return
	}
	if err := p.sendCandidate(c); err != nil {
		p.fail(err)
	}
}

// sendCandidate sends one local candidate, or the end of candidates for nil.
// sigMu is held.
func (p *Peer) sendCandidate(c *webrtc.ICECandidate) error {
	if c == nil {
		seq, err := p.signal(map[string]any{"candidate": nil})
		if err != nil {
			return err
		}
		p.after("end", seq)
		p.gatheredOnce.Do(func() { close(p.gathered) })
		return nil
	}
	seq, err := p.signal(map[string]any{"candidate": c.ToJSON()})
	if err != nil {
		return err
	}
	p.after("candidate", seq)
	return nil
}

func (p *Peer) after(kind string, seq int64) {
	if p.opts.AfterSignal != nil {
		p.opts.AfterSignal(p, kind, seq)
	}
}

func (p *Peer) signal(data any) (int64, error) {
	p.mu.Lock()
	room := p.chat.Room
	p.mu.Unlock()
	return p.Send(Msg{"type": "signal", "room": room, "data": data})
}

// onSignal applies the partner's description or candidate. Candidates that
// arrive before the remote description are held until it is set.
func (p *Peer) onSignal(b Frame) error {
	var f struct {
		Room string `json:"room"`
		Data struct {
			SDP       *webrtc.SessionDescription `json:"sdp"`
			Candidate json.RawMessage            `json:"candidate"`
		} `json:"data"`
	}
	if err := b.Decode(&f); err != nil {
		return fmt.Errorf("signal: %w: %s", err, b)
	}
	p.mu.Lock()
	pc, chat := p.pc, p.chat
	p.mu.Unlock()
	if pc == nil || chat == nil {
		return fmt.Errorf("signal before matched: %s", b)
	}
	if f.Room != chat.Room {
		return fmt.Errorf("signal for room %q in room %q: %s", f.Room, chat.Room, b)
	}
	switch {
	case f.Data.SDP != nil:
		return p.onDescription(pc, chat, *f.Data.SDP)
	case f.Data.Candidate != nil:
		var init *webrtc.ICECandidateInit
		if !bytes.Equal(bytes.TrimSpace(f.Data.Candidate), []byte("null")) {
			init = new(webrtc.ICECandidateInit)
			if err := json.Unmarshal(f.Data.Candidate, init); err != nil {
				return fmt.Errorf("signal candidate: %w: %s", err, b)
			}
		}
		p.mu.Lock()
		if !p.remoteSet {
			p.pendingRemote = append(p.pendingRemote, init)
			p.mu.Unlock()
			p.note("held a remote candidate until the remote description")
			return nil
		}
		p.mu.Unlock()
		return addCandidate(pc, init)
	default:
		return fmt.Errorf("signal with neither sdp nor candidate: %s", b)
	}
}

func addCandidate(pc *webrtc.PeerConnection, init *webrtc.ICECandidateInit) error {
	c := webrtc.ICECandidateInit{} // empty candidate: end of candidates
	if init != nil {
		c = *init
	}
	if err := pc.AddICECandidate(c); err != nil {
		return fmt.Errorf("add remote candidate %q: %w", c.Candidate, err)
	}
	return nil
}

func (p *Peer) onDescription(pc *webrtc.PeerConnection, chat *Chat, d webrtc.SessionDescription) error {
	want := webrtc.SDPTypeAnswer
	if !chat.Initiator {
		want = webrtc.SDPTypeOffer
	}
	if d.Type != want {
		return fmt.Errorf("got an %s, want an %s (initiator %v)", d.Type, want, chat.Initiator)
	}
	if err := pc.SetRemoteDescription(d); err != nil {
		return fmt.Errorf("set remote %s: %w", d.Type, err)
	}
	p.mu.Lock()
	p.remoteSet = true
	held := p.pendingRemote
	p.pendingRemote = nil
	p.mu.Unlock()
	for _, c := range held {
		if err := addCandidate(pc, c); err != nil {
			return err
		}
	}
	if chat.Initiator {
		return nil
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		return fmt.Errorf("create answer: %w", err)
	}
	if err := pc.SetLocalDescription(answer); err != nil {
		return fmt.Errorf("set local answer: %w", err)
	}
	return p.sendDescription(answer)
}

// Send writes a client frame with the next seq and keeps it for a resume.
// While the socket is down the frame is only kept: Resume sends it if the
// server has not processed it. It returns the frame's seq.
func (p *Peer) Send(m Msg) (int64, error) {
	seq, err := p.client.Send(m)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", p.name, err)
	}
	return seq, nil
}

// Drop cuts the socket without a close handshake, as a lost network would:
// the server starts the session's grace period. Frames sent afterwards are
// kept for Resume.
func (p *Peer) Drop() { p.client.Drop() }

// Resume reconnects to wsURL (any node) with ?resume=TOKEN&last=N, N being
// the highest seq received, then re-sends the frames the server has not
// processed (seq > welcome.lastSeq) and carries on. A socket still up is
// dropped first.
func (p *Peer) Resume(ctx context.Context, wsURL string) (ResumeResult, error) {
	var res ResumeResult
	p.Drop()
	p.mu.Lock()
	done := p.readDone
	p.mu.Unlock()
	select {
	case <-done: // every frame of the old socket is handled: last is final
	case <-ctx.Done():
		return res, fmt.Errorf("%s: waiting for the old read loop: %w", p.name, ctx.Err())
	}
	r, err := p.client.Resume(ctx, wsURL)
	if r.Welcome != nil {
		p.record("<", r.Welcome)
	}
	if err != nil {
		return res, fmt.Errorf("%s: %w", p.name, err)
	}
	if err := r.Welcome.Decode(&res.Welcome); err != nil {
		return res, fmt.Errorf("%s: welcome: %w", p.name, err)
	}
	res.Resent = r.Resent
	p.mu.Lock()
	p.welcome = res.Welcome
	p.mu.Unlock()
	p.startReading(p.client.Conn())
	return res, nil
}

// SocketEnded is closed when the current socket has ended and its frames
// are handled (a drop, a close by either side); then Resume may follow.
func (p *Peer) SocketEnded() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.readDone
}

// SocketError is how the last ended socket ended: a *websocket.CloseError
// carries the server's close code (e.g. 1012 on a drain, 4001 when a resume
// took the session over); nil while the first socket is up.
func (p *Peer) SocketError() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closeErr
}

// Welcome is the welcome of the current connection.
func (p *Peer) Welcome() Welcome {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.welcome
}

// Chat is the current match, if any.
func (p *Peer) Chat() (Chat, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.chat == nil {
		return Chat{}, false
	}
	return *p.chat, true
}

// LastReceived is the highest server seq received.
func (p *Peer) LastReceived() int64 { return p.client.Conn().Last() }

// Recv returns the next server frame except welcome and signal (the call
// consumes those), in order.
func (p *Peer) Recv(ctx context.Context) (Frame, error) {
	for {
		p.mu.Lock()
		if len(p.frames) > 0 {
			f := p.frames[0]
			p.frames = p.frames[1:]
			p.mu.Unlock()
			return f, nil
		}
		p.mu.Unlock()
		select {
		case <-p.framesReady:
		case <-ctx.Done():
			return nil, fmt.Errorf("%s: waiting for a frame: %w", p.name, ctx.Err())
		}
	}
}

// Await receives frames until one of type typ, passing over only frames of
// the types in skip; any other frame is an error.
func (p *Peer) Await(ctx context.Context, typ string, skip ...string) (Frame, error) {
	for {
		f, err := p.Recv(ctx)
		if err != nil {
			return f, fmt.Errorf("awaiting %s: %w", typ, err)
		}
		if f.Type() == typ {
			return f, nil
		}
		ok := false
		for _, s := range skip {
			ok = ok || s == f.Type()
		}
		if !ok {
			return f, fmt.Errorf("%s: awaiting %s, got %s", p.name, typ, f)
		}
	}
}

// Connected is closed when the data channel is open, so ICE, DTLS and SCTP
// are up.
func (p *Peer) Connected() <-chan struct{} { return p.connected }

// Gathered is closed when the peer has sent its end of candidates.
func (p *Peer) Gathered() <-chan struct{} { return p.gathered }

// Failed is closed at the first error of the call or the protocol; Err
// says which.
func (p *Peer) Failed() <-chan struct{} { return p.failed }

// Err is the first error seen by the peer's background work, or nil.
func (p *Peer) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// WaitConnected waits for Connected, failing early on an error.
func (p *Peer) WaitConnected(ctx context.Context) error {
	select {
	case <-p.connected:
		return nil
	case <-p.failed:
		return fmt.Errorf("%s: %w", p.name, p.Err())
	case <-ctx.Done():
		return fmt.Errorf("%s: waiting for the data channel (ICE %s): %w", p.name, p.ICEConnectionState(), ctx.Err())
	}
}

// SendData sends text on the data channel.
func (p *Peer) SendData(text string) error {
	p.mu.Lock()
	dc := p.dc
	p.mu.Unlock()
	if dc == nil {
		return fmt.Errorf("%s: no data channel", p.name)
	}
	if err := dc.SendText(text); err != nil {
		return fmt.Errorf("%s: data channel send: %w", p.name, err)
	}
	return nil
}

// RecvData returns the next data channel message.
func (p *Peer) RecvData(ctx context.Context) (string, error) {
	for {
		p.mu.Lock()
		if len(p.data) > 0 {
			s := p.data[0]
			p.data = p.data[1:]
			p.mu.Unlock()
			return s, nil
		}
		p.mu.Unlock()
		select {
		case <-p.dataReady:
		case <-ctx.Done():
			return "", fmt.Errorf("%s: waiting for a data channel message: %w", p.name, ctx.Err())
		}
	}
}

// PeerConnection is the current call's connection, nil before matched.
func (p *Peer) PeerConnection() *webrtc.PeerConnection {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pc
}

// ICEConnectionState is the call's ICE state ("new" before matched).
func (p *Peer) ICEConnectionState() webrtc.ICEConnectionState {
	pc := p.PeerConnection()
	if pc == nil {
		return webrtc.ICEConnectionStateNew
	}
	return pc.ICEConnectionState()
}

// SelectedPair is the candidate pair ICE selected.
func (p *Peer) SelectedPair() (*webrtc.ICECandidatePair, error) {
	pc := p.PeerConnection()
	if pc == nil {
		return nil, fmt.Errorf("%s: no call", p.name)
	}
	pair, err := pc.SCTP().Transport().ICETransport().GetSelectedCandidatePair()
	if err != nil {
		return nil, fmt.Errorf("%s: selected pair: %w", p.name, err)
	}
	if pair == nil {
		return nil, fmt.Errorf("%s: no selected pair", p.name)
	}
	return pair, nil
}

// Transcript is every frame in and out and every event, for failure messages.
func (p *Peer) Transcript() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.log, "\n")
}

// Close ends the peer: the socket with 1000 (the server ends the session),
// the read loop and the peer connection. It is idempotent.
func (p *Peer) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	done := p.readDone
	p.mu.Unlock()
	p.note("closing the socket with 1000")
	p.client.Close()
	if done != nil {
		select {
		case <-done:
		case <-time.After(wsclient.Timeout):
			p.note("read loop did not end")
		}
	}
	if pc := p.PeerConnection(); pc != nil {
		if err := pc.GracefulClose(); err != nil {
			p.note("closing the peer connection: %v", err)
		}
	}
}

func (p *Peer) fail(err error) {
	p.note("error: %v", err)
	p.mu.Lock()
	if p.err == nil {
		p.err = err
	}
	p.mu.Unlock()
	p.failOnce.Do(func() { close(p.failed) })
}

func (p *Peer) record(dir string, f Frame) { p.line(dir + " " + f.String()) }

func (p *Peer) note(format string, args ...any) {
	p.line("# " + fmt.Sprintf(format, args...))
}

func (p *Peer) line(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.log = append(p.log, fmt.Sprintf("%8.3fms %s %s", float64(time.Since(p.start).Microseconds())/1000, p.name, s))
}
