// Package conformance is the protocol conformance suite of Stranger: one test
// per row and rule of docs/protocol.md (shared/protocol.md), driven over real
// WebSockets against a Deployment — one in-memory node, or several nodes over
// Redis. Nothing here knows which backend it runs against.
//
// A backend's test calls Run with a function that starts a fresh deployment
// for the given Options. Subtests run in parallel, each with its own
// deployment, so that function must be safe for concurrent use and its
// deployments must not share state (for Redis: a key prefix or database per
// deployment).
package conformance

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strangerchat/stranger/test/wsclient"
)

// Deployment is a running set of nodes under test.
type Deployment interface {
	// URL is the WebSocket URL (ws://127.0.0.1:PORT/ws) of node i % Nodes().
	URL(i int) string
	// Nodes is the number of nodes.
	Nodes() int
	// Advance moves the deployment's fake clock forward by d, firing what
	// falls due (interest timeouts, grace periods, the report window) before
	// it returns. With Options.RealClock it is not called.
	Advance(d time.Duration)
	// CheckInvariants checks the engine's invariants (rule 7 and a complete
	// matching: no two waiting, connected sessions that accept each other).
	CheckInvariants() error
	// Drain starts the shutdown drain of node i: /readyz turns 503 and open
	// sockets are closed with 1012, while the listener still answers.
	Drain(i int)
	// Close stops every node and releases everything.
	Close()
}

// Options configure a deployment. Run fills zero fields with the defaults
// of protocol.md, so a Deployment gets every field set.
type Options struct {
	InterestTimeout time.Duration // default 5 s
	ResumeGrace     time.Duration // default 15 s
	MsgRate         float64       // frames per second; default 20
	MsgBurst        int           // default 60
	AllowedOrigins  []string
	PingInterval    time.Duration // default 10 s (10 min on the fake clock)
	PongTimeout     time.Duration // default 3 × PingInterval
	// MaxWaiting caps the queue (all modes); a join or next beyond it gets
	// overloaded. 0: the deployment's default (large).
	MaxWaiting int
	// RealClock runs the deployment on the wall clock instead of a fake one
	// (the ping tests); Advance is then never called.
	RealClock bool
}

func (o *Options) fill() {
	if o.InterestTimeout == 0 {
		o.InterestTimeout = 5 * time.Second
	}
	if o.ResumeGrace == 0 {
		o.ResumeGrace = 15 * time.Second
	}
	if o.MsgRate == 0 {
		o.MsgRate = 20
	}
	if o.MsgBurst == 0 {
		o.MsgBurst = 60
	}
	// On the fake clock no test wants pings: a pong releases kept frames,
	// and the resume tests count on them being kept (no ack arrives within
	// a test). Pings run on the wall clock in every server.
	if o.PingInterval == 0 {
		o.PingInterval = 10 * time.Second
		if !o.RealClock {
			o.PingInterval = 10 * time.Minute
		}
	}
	if o.PongTimeout == 0 {
		o.PongTimeout = 3 * o.PingInterval
	}
}

// NewDeployment starts a deployment for a test.
type NewDeployment func(t *testing.T, o Options) Deployment

// testCase is one conformance test: a protocol row or rule.
type testCase struct {
	name string
	opts func(*Options)
	run  func(t *testing.T, e *env)
}

// Run runs the whole suite.
func Run(t *testing.T, newDeployment NewDeployment) {
	var cases []testCase
	for _, group := range [][]testCase{
		transportCases(), checkCases(), frameCases(), matchingCases(), resumeCases(), powCases(),
	} {
		cases = append(cases, group...)
	}
	t.Run("rows", func(t *testing.T) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				var o Options
				if tc.opts != nil {
					tc.opts(&o)
				}
				tc.run(t, newEnv(t, newDeployment, o))
			})
		}
	})
	// The randomized test runs alone: it loads the machine.
	t.Run("random_concurrency", func(t *testing.T) {
		randomConcurrency(t, newDeployment)
	})
}

// env is one test's deployment plus helpers.
type env struct {
	d Deployment
	o Options

	mu   sync.Mutex
	next int // round-robin node index for new connections

	// dialSlots bounds the handshakes in flight in the random test: on a
	// loaded machine (2 cores, the race detector) hundreds at once can
	// each pass the handshake timeout.
	dialSlots chan struct{}
}

func newEnv(t *testing.T, newDeployment NewDeployment, o Options) *env {
	t.Helper()
	o.fill()
	d := newDeployment(t, o)
	t.Cleanup(d.Close)
	return &env{d: d, o: o, dialSlots: make(chan struct{}, 16)}
}

// node returns the next node index, round robin.
func (e *env) node() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	i := e.next
	e.next++
	return i
}

// dial connects to node i with query (e.g. "?resume=…") and header; the
// connection is released when the test ends.
func (e *env) dial(t testing.TB, i int, query string, o DialOptions) (*Client, *http.Response, error) {
	c, resp, err := Dial(e.d.URL(i)+query, o)
	if c != nil {
		t.Cleanup(c.Release)
	}
	return c, resp, err
}

// connectAt dials node i and takes the welcome.
func (e *env) connectAt(t testing.TB, i int, query string, o DialOptions) *Client {
	t.Helper()
	c, _, err := e.dial(t, i, query, o)
	if err != nil {
		t.Fatalf("%v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), expectTimeout)
	defer cancel()
	w, err := c.ReadWelcome(ctx)
	if err != nil {
		t.Fatalf("%s: %v", c.name(), err)
	}
	c.Welcome, c.Session, c.Token = w, w.Str("session"), w.Str("resumeToken")
	return c
}

// client connects a new session to the next node.
func (e *env) client(t testing.TB) *Client {
	t.Helper()
	c := e.connectAt(t, e.node(), "", DialOptions{})
	if r, ok := c.Welcome.Bool("resumed"); !ok || r {
		t.Fatalf("first welcome: resumed = %v, want false: %s", c.Welcome["resumed"], c.Welcome)
	}
	return c
}

// resume reconnects c's session to the next node with ?resume=token and
// last (omitted when last is ""), expecting a resumed welcome; the new
// client's seq check continues after trackFrom.
func (e *env) resume(t testing.TB, c *Client, last string, trackFrom int64) *Client {
	t.Helper()
	n := e.connectAt(t, e.node(), "?"+wsclient.ResumeQuery(c.Token, last), DialOptions{})
	if r, _ := n.Welcome.Bool("resumed"); !r {
		t.Fatalf("resume of %s: welcome not resumed: %s", c.Session, n.Welcome)
	}
	if n.Session != c.Session {
		t.Fatalf("resume: session %q, want %q", n.Session, c.Session)
	}
	if n.Token == c.Token {
		t.Fatalf("resume: the resume token was not renewed")
	}
	n.SetLast(trackFrom)
	return n
}

// resumeLast is resume with last = the highest seq c has taken.
func (e *env) resumeLast(t testing.TB, c *Client) *Client {
	t.Helper()
	return e.resume(t, c, itoa(c.Last()), c.Last())
}

// resumeFails tries to resume with token and expects a fresh session.
func (e *env) resumeFails(t testing.TB, token, oldSession string) *Client {
	t.Helper()
	n := e.connectAt(t, e.node(), "?"+wsclient.ResumeQuery(token, ""), DialOptions{})
	if r, ok := n.Welcome.Bool("resumed"); !ok || r {
		t.Fatalf("resume with a dead token: resumed = %v, want false: %s", n.Welcome["resumed"], n.Welcome)
	}
	if n.Session == oldSession {
		t.Fatalf("resume with a dead token gave the old session %q back", oldSession)
	}
	return n
}

// expectMatched takes an optional waiting and then matched (protocol: the
// server may answer matched at once, with or without waiting first).
func expectMatched(t testing.TB, c *Client) Frame {
	t.Helper()
	f, err := c.NextWithin(expectTimeout)
	if err != nil {
		t.Fatalf("%s: expecting matched: %v", c.name(), err)
	}
	if f.Type() == "waiting" {
		f, err = c.NextWithin(expectTimeout)
		if err != nil {
			t.Fatalf("%s: expecting matched after waiting: %v", c.name(), err)
		}
	}
	if f.Type() != "matched" {
		t.Fatalf("%s: got %s, want matched", c.name(), f)
	}
	return f
}

// join sends join with mode ("" for none) and interests (nil for none) and
// expects waiting.
func join(t testing.TB, c *Client, mode string, interests ...string) {
	t.Helper()
	m := M{"type": "join"}
	if mode != "" {
		m["mode"] = mode
	}
	if interests != nil {
		m["interests"] = interests
	}
	c.Send(t, m)
	c.Expect(t, "waiting")
}

// joinMatched sends join and expects to be matched.
func joinMatched(t testing.TB, c *Client, mode string, interests ...string) Frame {
	t.Helper()
	m := M{"type": "join"}
	if mode != "" {
		m["mode"] = mode
	}
	if interests != nil {
		m["interests"] = interests
	}
	c.Send(t, m)
	return expectMatched(t, c)
}

// pair connects two new sessions and matches them in mode ("" = default).
// It returns them with their matched frames.
func (e *env) pair(t testing.TB, mode string) (a, b *Client, ma, mb Frame) {
	t.Helper()
	a, b = e.client(t), e.client(t)
	join(t, a, mode)
	mb = joinMatched(t, b, mode)
	ma = a.Expect(t, "matched")
	checkPair(t, ma, mb)
	return a, b, ma, mb
}

// checkPair checks the two matched frames of one chat.
func checkPair(t testing.TB, ma, mb Frame) {
	t.Helper()
	for _, m := range []Frame{ma, mb} {
		if m.Str("room") == "" {
			t.Fatalf("matched without room: %s", m)
		}
		if _, ok := m.Bool("initiator"); !ok {
			t.Fatalf("matched without boolean initiator: %s", m)
		}
		if mode := m.Str("mode"); mode != "video" && mode != "text" {
			t.Fatalf("matched with mode %q: %s", mode, m)
		}
		if _, ok := m["commonInterests"].([]any); !ok {
			t.Fatalf("matched without commonInterests array: %s", m)
		}
	}
	if ma.Str("room") != mb.Str("room") {
		t.Fatalf("partners in different rooms: %s / %s", ma, mb)
	}
	ia, _ := ma.Bool("initiator")
	ib, _ := mb.Bool("initiator")
	if ia == ib {
		t.Fatalf("want exactly one initiator: %s / %s", ma, mb)
	}
	if ma.Str("mode") != mb.Str("mode") {
		t.Fatalf("partners in different modes: %s / %s", ma, mb)
	}
	if !sameSet(strs(ma["commonInterests"]), strs(mb["commonInterests"])) {
		t.Fatalf("partners see different commonInterests: %s / %s", ma, mb)
	}
}

func strs(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, x := range list {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[string]int{}
	for _, x := range a {
		seen[x]++
	}
	for _, x := range b {
		seen[x]--
	}
	for _, n := range seen {
		if n != 0 {
			return false
		}
	}
	return true
}

// skipUntil takes frames until one of type typ, allowing only the types in
// skip before it.
func skipUntil(t testing.TB, c *Client, typ string, skip ...string) Frame {
	t.Helper()
	for {
		f, err := c.NextWithin(expectTimeout)
		if err != nil {
			t.Fatalf("%s: expecting %q: %v", c.name(), typ, err)
		}
		if f.Type() == typ {
			return f
		}
		if !slices.Contains(skip, f.Type()) {
			t.Fatalf("%s: got %s, want %q", c.name(), f, typ)
		}
	}
}

func jsonNumber(s string) json.Number { return json.Number(s) }

// online reads welcome.online with a probe connection (which counts itself
// and ends with a 1000 close), minus the probe.
func (e *env) online(t testing.TB) int {
	t.Helper()
	p := e.connectAt(t, e.node(), "", DialOptions{})
	n, ok := p.Welcome.Int("online")
	if !ok {
		t.Fatalf("welcome without integer online: %s", p.Welcome)
	}
	p.Close(1000)
	return int(n) - 1
}

// waitOnline polls until the deployment counts n live connections besides
// the probe: the way a test knows that the server has noticed a drop. On
// several nodes the other nodes' counts travel with their heartbeats (one a
// second) and are read with this node's next one, so a change can take two
// beats to show; the wait allows for that on top of the usual expectation
// (expectTimeout alone failed now and then on three Redis nodes under load).
func (e *env) waitOnline(t testing.TB, n int) {
	t.Helper()
	deadline := time.Now().Add(expectTimeout + 2*time.Second)
	for {
		got := e.online(t)
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("online stays %d, want %d", got, n)
		}
		time.Sleep(10 * time.Millisecond) // polling interval, bounded by the deadline
	}
}

// httpGet fetches path on node i and returns the status.
func (e *env) httpGet(t testing.TB, i int, path string) int {
	t.Helper()
	u := strings.Replace(e.d.URL(i), "ws://", "http://", 1)
	u = strings.TrimSuffix(u, "/ws") + path
	cl := &http.Client{Timeout: expectTimeout}
	resp, err := cl.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}

// jsonEqual compares two decoded JSON values (object member order and
// white space do not matter; numbers compare by their exact text).
func jsonEqual(a, b any) bool { return canon(a) == canon(b) }

// canon renders a decoded JSON value deterministically.
func canon(v any) string {
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		var sb strings.Builder
		sb.WriteString("{")
		for _, k := range keys {
			fmt.Fprintf(&sb, "%q:%s,", k, canon(x[k]))
		}
		sb.WriteString("}")
		return sb.String()
	case []any:
		var sb strings.Builder
		sb.WriteString("[")
		for _, y := range x {
			sb.WriteString(canon(y))
			sb.WriteString(",")
		}
		sb.WriteString("]")
		return sb.String()
	case string:
		return fmt.Sprintf("%q", x)
	case nil:
		return "null"
	default:
		return fmt.Sprintf("%v", x)
	}
}
