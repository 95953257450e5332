// Package moderation_test checks moderation from outside, the way an abuser
// and the people they harass meet it: real nodes (memory, one Redis node,
// three Redis nodes sharing a PostgreSQL), real WebSockets from different
// loopback addresses standing in for different people, and the operator API
// over HTTP (docs/moderation.md).
package moderation_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/strangerchat/stranger/internal/config"
	"github.com/strangerchat/stranger/internal/pgtest"
	"github.com/strangerchat/stranger/internal/redistest"
	"github.com/strangerchat/stranger/internal/server"
	"github.com/strangerchat/stranger/test/wsclient"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// People, by source address.
const (
	abuser   = "127.0.0.5"
	stranger = "127.0.0.6"
)

var reporters = []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"}

// banWithin is the contract's bound: a ban holds on every node within one
// second (moderation.md, Bans).
const banWithin = time.Second

// deployment is a set of nodes that can be restarted with the same
// configuration (same Redis, same database or data directory).
type deployment struct {
	t     *testing.T
	cfgs  []config.Config
	nodes []*server.Server
}

func newDeployment(t *testing.T, kind string, change ...func(*config.Config)) *deployment {
	t.Helper()
	base := config.Default()
	base.Addr, base.AdminAddr = "127.0.0.1:0", "127.0.0.1:0"
	base.STUN = nil
	base.BanThreshold = 3
	base.BanDuration = time.Hour
	base.MaxConnsPerIP = 0
	base.ConnRate = 0 // the tests reconnect one person quickly; quotas have their own tests
	n := 1
	switch kind {
	case "memory":
		base.DataDir = t.TempDir() // kept across the restart
	case "redis1":
		base.Redis = redistest.StartServer(t).URL()
		base.DataDir = t.TempDir()
	case "redis3":
		n = 3
		base.Redis = redistest.StartServer(t).URL()
		base.Database = pgtest.Shared(t).NewDatabase(t)
	default:
		t.Fatalf("unknown deployment %q", kind)
	}
	for _, f := range change {
		f(&base)
	}
	d := &deployment{t: t}
	for range n {
		d.cfgs = append(d.cfgs, base)
	}
	d.start()
	t.Cleanup(d.stop)
	return d
}

func (d *deployment) start() {
	d.t.Helper()
	for _, cfg := range d.cfgs {
		s, err := server.New(cfg, slog.New(slog.DiscardHandler), server.Options{})
		if err != nil {
			d.t.Fatalf("server.New: %v", err)
		}
		if err := s.Start(context.Background()); err != nil {
			d.t.Fatalf("server.Start: %v", err)
		}
		d.nodes = append(d.nodes, s)
	}
}

func (d *deployment) stop() {
	for _, s := range d.nodes {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := s.Shutdown(ctx); err != nil {
			d.t.Errorf("shutdown: %v", err)
		}
		cancel()
	}
	d.nodes = nil
}

// restart stops every node, then starts them all again.
func (d *deployment) restart() {
	d.t.Helper()
	d.stop()
	d.start()
}

func (d *deployment) ws(i int) string    { return "ws://" + d.nodes[i%len(d.nodes)].Addr() + "/ws" }
func (d *deployment) admin(i int) string { return "http://" + d.nodes[i%len(d.nodes)].AdminAddr() }

// person is one browser tab.
type person struct {
	t    *testing.T
	c    *wsclient.Conn
	from string
}

func connect(t *testing.T, url, from string) *person {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := wsclient.Dial(ctx, url, wsclient.DialOptions{From: from})
	if err != nil {
		t.Fatalf("%s: %v", from, err)
	}
	if _, err := c.ReadWelcome(ctx); err != nil {
		t.Fatalf("%s: welcome: %v", from, err)
	}
	p := &person{t: t, c: c, from: from}
	t.Cleanup(c.Release)
	return p
}

func (p *person) send(m map[string]any) {
	p.t.Helper()
	if err := p.c.Send(m); err != nil {
		p.t.Fatalf("%s: send %v: %v", p.from, m, err)
	}
}

// expect reads frames until one of type typ, failing on an error frame.
func (p *person) expect(typ string) wsclient.Frame {
	p.t.Helper()
	for {
		f, err := p.c.NextWithin(5 * time.Second)
		if err != nil {
			p.t.Fatalf("%s: waiting for %s: %v", p.from, typ, err)
		}
		if f.Type() == typ {
			return f
		}
		if f.Type() == "error" {
			p.t.Fatalf("%s: waiting for %s, got %s", p.from, typ, f)
		}
	}
}

// leave leaves the queue and closes the tab, and returns once the server
// has processed the leave (a pong covers it): the next person's join must
// not find this one still waiting.
func (p *person) leave() {
	p.t.Helper()
	p.send(map[string]any{"type": "leave"})
	p.send(map[string]any{"type": "ping"})
	p.expect("pong")
	p.c.Close(1000)
}

// joinOutcome joins text chat and returns the first answer: "waiting",
// "matched" or the error code.
func (p *person) joinOutcome() string {
	p.t.Helper()
	p.send(map[string]any{"type": "join", "mode": "text"})
	f, err := p.c.NextWithin(5 * time.Second)
	if err != nil {
		p.t.Fatalf("%s: join: %v", p.from, err)
	}
	if f.Type() == "error" {
		return f.Str("code")
	}
	return f.Type()
}

// harass is one round: the abuser meets the reporter, says something
// ugly, closes the tab; the reporter reports the partner who is gone.
// It returns the reported frame.
func harass(t *testing.T, d *deployment, reporter string, abuserNode, reporterNode int) wsclient.Frame {
	t.Helper()
	a := connect(t, d.ws(abuserNode), abuser)
	if got := a.joinOutcome(); got != "waiting" {
		t.Fatalf("abuser's join: %s, want waiting", got)
	}
	r := connect(t, d.ws(reporterNode), reporter)
	r.send(map[string]any{"type": "join", "mode": "text"})
	r.expect("matched")
	a.expect("matched")
	a.send(map[string]any{"type": "chat", "text": "something ugly"})
	r.expect("chat")
	r.send(map[string]any{"type": "chat", "text": "stop it"})
	a.expect("chat")
	a.c.Close(1001) // the tab closes
	if f := r.expect("peer_left"); f.Str("reason") != "left" {
		t.Fatalf("peer_left %s, want reason left", f)
	}
	r.send(map[string]any{"type": "report", "reason": "harassment"})
	rep := r.expect("reported")
	if rep.Str("report") == "" || rep.Str("evidenceToken") == "" {
		t.Fatalf("reported frame without report id or evidence token: %s", rep)
	}
	r.c.Close(1000)
	return rep
}

// bannedWithin connects as from to node i and joins until the join is
// refused with banned (want true) or served (want false), for at most
// within; it returns how long that took.
func bannedWithin(t *testing.T, d *deployment, node int, from string, want bool, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		p := connect(t, d.ws(node), from)
		got := p.joinOutcome()
		p.leave()
		if (got == "banned") == want {
			return time.Since(start)
		}
		if got != "waiting" && got != "banned" {
			t.Fatalf("%s's join on node %d: %s", from, node, got)
		}
		if time.Since(start) > within {
			t.Fatalf("%s's join on node %d: still %s after %v", from, node, got, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// api calls the operator API of node i and decodes the answer into out.
func api(t *testing.T, d *deployment, node int, method, path string, body any, wantStatus int, out any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, d.admin(node)+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != wantStatus {
		t.Fatalf("%s %s: %s %s, want %d", method, path, resp.Status, raw, wantStatus)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, raw)
		}
	}
}

type reportJSON struct {
	ID       string `json:"id"`
	Reason   string `json:"reason"`
	Mode     string `json:"mode"`
	Reporter string `json:"reporter"`
	Reported string `json:"reported"`
	Status   string `json:"status"`
	Messages []struct {
		From string `json:"from"`
		Text string `json:"text"`
	} `json:"messages"`
	ReportsAgainst int `json:"reportsAgainst"`
}

type banJSON struct {
	Identity string   `json:"identity"`
	Until    *string  `json:"until"`
	Source   string   `json:"source"`
	Reports  []string `json:"reports"`
}

func TestModeration(t *testing.T) {
	for _, kind := range []string{"memory", "redis1", "redis3"} {
		t.Run(kind, func(t *testing.T) { testModeration(t, kind) })
	}
}

func testModeration(t *testing.T, kind string) {
	d := newDeployment(t, kind)
	n := len(d.nodes)

	// Three people report the abuser, who closed the tab each time, from
	// node to node; two reports do not ban.
	var reportIDs []string
	for i, r := range reporters {
		rep := harass(t, d, r, 0, 1+i)
		reportIDs = append(reportIDs, rep.Str("report"))
		if i < len(reporters)-1 {
			bannedWithin(t, d, n-1, abuser, false, 0)
		}
	}
	// The third report bans them on another node within one second.
	took := bannedWithin(t, d, n-1, abuser, true, banWithin)
	t.Logf("%s: automatic ban seen on node %d after %v", kind, n-1, took)

	// The operator sees the three reports: the abuser's identity, three
	// distinct reporters, the chat as relayed, and the automatic ban.
	var list struct{ Reports []reportJSON }
	api(t, d, 0, "GET", "/admin/api/reports?status=all", nil, http.StatusOK, &list)
	if len(list.Reports) != 3 {
		t.Fatalf("reports listed: %d, want 3", len(list.Reports))
	}
	suspect := list.Reports[0].Reported
	seen := map[string]bool{}
	for _, r := range list.Reports {
		if r.Reported != suspect || r.Reporter == suspect || seen[r.Reporter] {
			t.Fatalf("reports do not name one suspect and three distinct reporters: %+v", list.Reports)
		}
		seen[r.Reporter] = true
		if r.Reason != "harassment" || r.Mode != "text" || len(r.Messages) != 2 ||
			r.Messages[0].From != "reported" || r.Messages[1].From != "reporter" || r.Messages[1].Text != "stop it" {
			t.Fatalf("report %+v does not carry the chat as relayed", r)
		}
		if !slices.Contains(reportIDs, r.ID) {
			t.Fatalf("listed report %s was not one the reporters were told of (%v)", r.ID, reportIDs)
		}
	}
	for _, raw := range []string{abuser, reporters[0], "127.0.0.1"} {
		if bytes.Contains([]byte(fmt.Sprint(list)), []byte(raw)) {
			t.Fatalf("the operator API shows the raw address %s", raw)
		}
	}
	var one reportJSON
	api(t, d, n-1, "GET", "/admin/api/reports/"+reportIDs[0], nil, http.StatusOK, &one)
	if one.ReportsAgainst != 3 {
		t.Fatalf("reportsAgainst %d, want 3", one.ReportsAgainst)
	}
	var bans struct{ Bans []banJSON }
	api(t, d, n-1, "GET", "/admin/api/bans", nil, http.StatusOK, &bans)
	if len(bans.Bans) != 1 || bans.Bans[0].Identity != suspect || bans.Bans[0].Source != "auto" {
		t.Fatalf("bans %+v, want one automatic ban of %s", bans.Bans, suspect)
	}

	// A moderator lifts it: the abuser chats again, on every node, within
	// one second.
	api(t, d, 0, "DELETE", "/admin/api/bans/"+suspect, nil, http.StatusNoContent, nil)
	for i := range n {
		bannedWithin(t, d, i, abuser, false, banWithin)
	}

	// The first reporter and the abuser, both back on new connections, are
	// not matched with each other; someone else is matched with the one
	// who waited longest.
	r := connect(t, d.ws(0), reporters[0])
	if got := r.joinOutcome(); got != "waiting" {
		t.Fatalf("reporter's join: %s", got)
	}
	a := connect(t, d.ws(n-1), abuser)
	if got := a.joinOutcome(); got != "waiting" {
		t.Fatalf("abuser's join: %s, want waiting (not matched with the person who reported them)", got)
	}
	if f, err := r.c.NextWithin(500 * time.Millisecond); err == nil {
		t.Fatalf("reporter got %s while only the reported person waited", f)
	}
	s := connect(t, d.ws(1), stranger)
	s.send(map[string]any{"type": "join", "mode": "text"})
	s.expect("matched")
	r.expect("matched")
	if f, err := a.c.NextWithin(300 * time.Millisecond); err == nil {
		t.Fatalf("abuser got %s", f)
	}

	// A ban ends the banned person's open session at once: the abuser,
	// still waiting on the last node, is disconnected with 4003.
	api(t, d, 0, "POST", "/admin/api/bans", map[string]any{"identity": suspect, "duration": "24h", "reason": "harassment"},
		http.StatusCreated, nil)
	select {
	case <-a.c.Done():
	case <-time.After(banWithin):
		t.Fatalf("the banned person's open session is still open after %v", banWithin)
	}
	if code := wsclient.CloseCode(a.c.Err()); code != 4003 {
		t.Fatalf("banned session closed with %d (%v), want 4003", code, a.c.Err())
	}

	// The ban survives a restart of every node; lifting it works after it.
	d.restart()
	for i := range n {
		bannedWithin(t, d, i, abuser, true, 0)
	}
	api(t, d, n-1, "DELETE", "/admin/api/bans/"+suspect, nil, http.StatusNoContent, nil)
	bannedWithin(t, d, 0, abuser, false, banWithin)
}

// TestBanLatency measures how long a moderator's ban takes to end the
// banned person's session on another node, 20 times, and reports the
// median and the worst (docs/benchmarks.md). Each must be within the
// contract's second.
func TestBanLatency(t *testing.T) {
	d := newDeployment(t, "redis3")
	n := len(d.nodes)
	var suspect string
	{ // learn the abuser's identity hash from a report
		rep := harass(t, d, reporters[0], 0, 1)
		var one reportJSON
		api(t, d, 0, "GET", "/admin/api/reports/"+rep.Str("report"), nil, http.StatusOK, &one)
		suspect = one.Reported
	}
	var took []time.Duration
	for i := range 20 {
		a := connect(t, d.ws(n-1), abuser)
		if got := a.joinOutcome(); got != "waiting" {
			t.Fatalf("round %d: abuser's join: %s", i, got)
		}
		start := time.Now()
		api(t, d, i%(n-1), "POST", "/admin/api/bans", map[string]any{"identity": suspect, "duration": "1h", "reason": "test"},
			http.StatusCreated, nil)
		select {
		case <-a.c.Done():
			took = append(took, time.Since(start))
		case <-time.After(banWithin):
			t.Fatalf("round %d: session still open %v after the ban", i, banWithin)
		}
		api(t, d, 0, "DELETE", "/admin/api/bans/"+suspect, nil, http.StatusNoContent, nil)
		bannedWithin(t, d, n-1, abuser, false, banWithin)
	}
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	t.Logf("ban on node 0/1 to session closed on node %d, 20 rounds: median %v, worst %v", n-1, took[len(took)/2], took[len(took)-1])
}

// TestEvidenceAndPublicOperatorAPI: the token of a `reported` frame
// uploads one image to the public listener, which the operator then sees;
// the operator API on the public listener needs the --admin-token.
func TestEvidenceAndPublicOperatorAPI(t *testing.T) {
	const token = "operator-token-0123456789"
	d := newDeployment(t, "memory", func(c *config.Config) { c.AdminToken = token })
	rep := harass(t, d, reporters[0], 0, 0)
	public := "http://" + d.nodes[0].Addr()

	upload := func(tok, contentType string, body []byte) int {
		t.Helper()
		req, _ := http.NewRequest("POST", public+"/api/evidence", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", contentType)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	jpeg := append([]byte{0xFF, 0xD8, 0xFF, 0xE0}, bytes.Repeat([]byte{0x42}, 2000)...)
	jpeg = append(jpeg, 0xFF, 0xD9)
	if got := upload(rep.Str("evidenceToken"), "image/jpeg", []byte("just text, not a picture")); got != http.StatusUnsupportedMediaType {
		t.Fatalf("text as image/jpeg: %d, want 415", got)
	}
	if got := upload(rep.Str("evidenceToken"), "image/jpeg", append(jpeg[:4:4], make([]byte, 300<<10)...)); got != http.StatusRequestEntityTooLarge {
		t.Fatalf("300 KiB: %d, want 413", got)
	}
	if got := upload("not-a-token", "image/jpeg", jpeg); got != http.StatusUnauthorized {
		t.Fatalf("unknown token: %d, want 401", got)
	}
	if got := upload(rep.Str("evidenceToken"), "image/jpeg", jpeg); got != http.StatusNoContent {
		t.Fatalf("valid upload: %d, want 204", got)
	}
	if got := upload(rep.Str("evidenceToken"), "image/jpeg", jpeg); got != http.StatusUnauthorized {
		t.Fatalf("second upload with the same token: %d, want 401", got)
	}

	// The operator sees it, on the admin listener without a token and on
	// the public one only with it.
	get := func(base, path, bearer string) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest("GET", base+path, nil)
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	path := "/admin/api/reports/" + rep.Str("report") + "/evidence"
	if code, b := get(d.admin(0), path, ""); code != http.StatusOK || !bytes.Equal(b, jpeg) {
		t.Fatalf("evidence on the admin listener: %d, %d bytes", code, len(b))
	}
	if code, _ := get(public, path, ""); code != http.StatusUnauthorized {
		t.Fatalf("evidence on the public listener without the token: %d, want 401", code)
	}
	if code, _ := get(public, path, "wrong-token-0123456789"); code != http.StatusUnauthorized {
		t.Fatalf("evidence on the public listener with a wrong token: %d, want 401", code)
	}
	if code, b := get(public, path, token); code != http.StatusOK || !bytes.Equal(b, jpeg) {
		t.Fatalf("evidence on the public listener with the token: %d, %d bytes", code, len(b))
	}
}

// TestNoPublicOperatorAPIWithoutToken: without --admin-token the public
// listener serves no operator API at all.
func TestNoPublicOperatorAPIWithoutToken(t *testing.T) {
	d := newDeployment(t, "memory")
	resp, err := http.Get("http://" + d.nodes[0].Addr() + "/admin/api/reports")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK && bytes.Contains(b, []byte(`"reports"`)) {
		t.Fatalf("the public listener serves the operator API without a token: %s", b)
	}
}

// TestConsoleServed: the operator console page is on the admin listener;
// on the public listener only with --admin-token.
func TestConsoleServed(t *testing.T) {
	get := func(url string) (int, string) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	d := newDeployment(t, "memory")
	if code, body := get(d.admin(0) + "/admin/"); code != http.StatusOK || !bytes.Contains([]byte(body), []byte("<html")) {
		t.Fatalf("console on the admin listener: %d", code)
	}
	if code, _ := get("http://" + d.nodes[0].Addr() + "/admin/"); code != http.StatusNotFound {
		t.Fatalf("console on the public listener without --admin-token: %d, want 404", code)
	}
	d2 := newDeployment(t, "memory", func(c *config.Config) { c.AdminToken = "operator-token-0123456789" })
	if code, _ := get("http://" + d2.nodes[0].Addr() + "/admin/"); code != http.StatusOK {
		t.Fatalf("console page on the public listener with --admin-token: %d, want 200", code)
	}
}
