package moderation

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/strangerchat/stranger/internal/identity"
	"github.com/strangerchat/stranger/internal/modstore"
)

type fixedLive struct{ online, waiting, chatting, matches int }

func (l fixedLive) Online() int            { return l.online }
func (l fixedLive) Waiting() int           { return l.waiting }
func (l fixedLive) Chatting() int          { return l.chatting }
func (l fixedLive) MatchesLastMinute() int { return l.matches }

type api struct {
	t *testing.T
	h http.Handler
}

// do sends a request and decodes a JSON answer into out (when not nil).
func (a api) do(method, path, body string, status int, out any) *httptest.ResponseRecorder {
	a.t.Helper()
	var rd *strings.Reader
	if body != "" {
		rd = strings.NewReader(body)
	} else {
		rd = strings.NewReader("")
	}
	req := httptest.NewRequest(method, path, rd)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	a.h.ServeHTTP(rec, req)
	wantStatus(a.t, rec, status, method+" "+path)
	if out != nil {
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
			a.t.Fatalf("%s %s: Content-Type %q", method, path, ct)
		}
		if err := json.Unmarshal(rec.Body.Bytes(), out); err != nil {
			a.t.Fatalf("%s %s: %v in %s", method, path, err, rec.Body)
		}
	}
	return rec
}

// reportOut and banOut are the contract's JSON, read back with every field
// checked by name.
type reportOut struct {
	ID              string   `json:"id"`
	At              string   `json:"at"`
	Reason          string   `json:"reason"`
	Mode            string   `json:"mode"`
	CommonInterests []string `json:"commonInterests"`
	ChatSeconds     float64  `json:"chatSeconds"`
	Reporter        string   `json:"reporter"`
	Reported        string   `json:"reported"`
	Messages        []struct {
		From string `json:"from"`
		Text string `json:"text"`
		At   string `json:"at"`
	} `json:"messages"`
	Evidence       bool   `json:"evidence"`
	Status         string `json:"status"`
	ReportsAgainst *int   `json:"reportsAgainst"`
}

type banOut struct {
	Identity string   `json:"identity"`
	Until    *string  `json:"until"`
	Reason   string   `json:"reason"`
	Source   string   `json:"source"`
	Reports  []string `json:"reports"`
	At       string   `json:"at"`
}

func reportIDs(rs []reportOut) []string {
	out := []string{}
	for _, r := range rs {
		out = append(out, r.ID)
	}
	return out
}

func TestAdminAPI(t *testing.T) {
	eachBackend(t, func(t *testing.T, open opener) {
		clk := fakeClock()
		st := open(t)
		n := newNode(t, st, Config{Clock: clk, Threshold: 10, Window: 24 * time.Hour})
		a := api{t, n.AdminAPI(fixedLive{online: 7, waiting: 2, chatting: 4, matches: 3})}

		// Four reports against 100 from 1, 2, 3 (3 twice), a second apart.
		var filed []Filed
		for _, reporter := range []int{1, 2, 3, 3} {
			f, err := n.File(ctx, report(reporter, 100))
			if err != nil {
				t.Fatal(err)
			}
			filed = append(filed, f)
			clk.Advance(time.Second)
		}
		other, _ := n.File(ctx, report(4, 200))
		clk.Advance(time.Second)
		if err := st.PutEvidence(ctx, filed[0].ID, modstore.Evidence{ContentType: "image/png", Data: pngBytes}); err != nil {
			t.Fatal(err)
		}

		// The list, newest first, open by default; limit and before page it.
		var list struct{ Reports []reportOut }
		a.do("GET", "/admin/api/reports", "", 200, &list)
		want := []string{string(other.ID), string(filed[3].ID), string(filed[2].ID), string(filed[1].ID), string(filed[0].ID)}
		if got := reportIDs(list.Reports); !reflect.DeepEqual(got, want) {
			t.Fatalf("reports %v, want %v", got, want)
		}
		r0 := list.Reports[4]
		if r0.Reason != "harassment" || r0.Mode != "video" || !reflect.DeepEqual(r0.CommonInterests, []string{"music"}) ||
			r0.ChatSeconds != 42.5 || r0.Reporter != string(hash(1)) || r0.Reported != string(hash(100)) ||
			len(r0.Messages) != 1 || r0.Messages[0].From != "reported" || r0.Messages[0].Text != "go away" ||
			!r0.Evidence || r0.Status != "open" || r0.ReportsAgainst != nil {
			t.Fatalf("listed report %+v", r0)
		}
		if _, err := time.Parse(time.RFC3339, r0.At); err != nil {
			t.Fatalf("at %q is not RFC 3339", r0.At)
		}
		a.do("GET", "/admin/api/reports?limit=2", "", 200, &list)
		if got := reportIDs(list.Reports); !reflect.DeepEqual(got, want[:2]) {
			t.Fatalf("limit=2: %v", got)
		}
		a.do("GET", "/admin/api/reports?limit=2&before="+want[1], "", 200, &list)
		if got := reportIDs(list.Reports); !reflect.DeepEqual(got, want[2:4]) {
			t.Fatalf("second page: %v, want %v", got, want[2:4])
		}
		for _, bad := range []string{"limit=0", "limit=201", "limit=x", "status=closed", "before=rnothere"} {
			a.do("GET", "/admin/api/reports?"+bad, "", 400, nil)
		}
		a.do("GET", "/admin/api/reports?limit=200", "", 200, nil)

		// One report with reportsAgainst: three distinct identities.
		var one reportOut
		a.do("GET", "/admin/api/reports/"+string(filed[1].ID), "", 200, &one)
		if one.ID != string(filed[1].ID) || one.ReportsAgainst == nil || *one.ReportsAgainst != 3 {
			t.Fatalf("one report: %+v, want reportsAgainst 3", one)
		}
		a.do("GET", "/admin/api/reports/rnothere", "", 404, nil)

		// Evidence with its type; 404 without one.
		rec := a.do("GET", "/admin/api/reports/"+string(filed[0].ID)+"/evidence", "", 200, nil)
		if rec.Header().Get("Content-Type") != "image/png" || !bytes.Equal(rec.Body.Bytes(), pngBytes) {
			t.Fatalf("evidence: %q, %d bytes", rec.Header().Get("Content-Type"), rec.Body.Len())
		}
		a.do("GET", "/admin/api/reports/"+string(filed[1].ID)+"/evidence", "", 404, nil)
		a.do("GET", "/admin/api/reports/rnothere/evidence", "", 404, nil)

		// Dismiss: 204, then in the dismissed list and out of the open one.
		a.do("POST", "/admin/api/reports/"+string(other.ID)+"/dismiss", "", 204, nil)
		a.do("POST", "/admin/api/reports/rnothere/dismiss", "", 404, nil)
		a.do("GET", "/admin/api/reports?status=dismissed", "", 200, &list)
		if got := reportIDs(list.Reports); !reflect.DeepEqual(got, []string{string(other.ID)}) {
			t.Fatalf("dismissed: %v", got)
		}
		a.do("GET", "/admin/api/reports?status=all", "", 200, &list)
		if len(list.Reports) != 5 {
			t.Fatalf("all: %d reports", len(list.Reports))
		}

		// Bad ban requests change nothing.
		for _, body := range []string{
			`{"report": "` + string(filed[0].ID) + `"`,                                                    // bad JSON
			`{"report": "` + string(filed[0].ID) + `", "duration": "a week"}`,                             // bad duration
			`{"report": "` + string(filed[0].ID) + `", "duration": "-1h"}`,                                // negative
			`{"report": "` + string(filed[0].ID) + `"}`,                                                   // no duration
			`{"duration": "24h"}`,                                                                         // no target
			`{"report": "` + string(filed[0].ID) + `", "identity": "0000000000000064", "duration": "1h"}`, // both
			`{"identity": "203.0.113.7", "duration": "1h"}`,                                               // an address
			`{"identity": "0000000000000064", "duration": "1h", "until": "x"}`,                            // unknown field
			`{"identity": "0000000000000064", "duration": "1h", "reason": "` + strings.Repeat("x", 501) + `"}`,
			`{"identity": "0000000000000064", "duration": "1h"} {}`,                                             // two values
			`{"identity": "0000000000000064", "duration": "1h", "reason": "` + strings.Repeat("x", 5000) + `"}`, // body limit
		} {
			a.do("POST", "/admin/api/bans", body, 400, nil)
		}
		a.do("POST", "/admin/api/bans", `{"report": "rnothere", "duration": "1h"}`, 404, nil)
		var bans struct{ Bans []banOut }
		a.do("GET", "/admin/api/bans", "", 200, &bans)
		if len(bans.Bans) != 0 || n.Banned(hash(100)) {
			t.Fatalf("bad requests banned: %+v", bans)
		}
		if r, _ := st.Report(ctx, filed[0].ID); r.Status != modstore.StatusOpen {
			t.Fatalf("a bad request changed a report: %s", r.Status)
		}

		// Ban by report for 24 h: 201 with the record; the reports against
		// the identity become actioned; the ban starts (OnBan).
		var ban banOut
		a.do("POST", "/admin/api/bans", `{"report": "`+string(filed[1].ID)+`", "duration": "24h", "reason": "harassment"}`, 201, &ban)
		until := clk.Now().Add(24 * time.Hour)
		if ban.Identity != string(hash(100)) || ban.Until == nil || ban.Reason != "harassment" || ban.Source != "moderator" ||
			len(ban.Reports) != 4 || ban.Reports[0] != string(filed[1].ID) {
			t.Fatalf("ban %+v", ban)
		}
		if u, err := time.Parse(time.RFC3339, *ban.Until); err != nil || !u.Equal(until) {
			t.Fatalf("until %q, want %v", *ban.Until, until)
		}
		if !n.Banned(hash(100)) || !reflect.DeepEqual(n.startedBans(), []identity.Hash{hash(100)}) {
			t.Fatal("the ban did not start")
		}
		a.do("GET", "/admin/api/reports", "", 200, &list)
		if len(list.Reports) != 0 {
			t.Fatalf("open reports after the ban: %v", reportIDs(list.Reports))
		}
		a.do("GET", "/admin/api/reports?status=actioned", "", 200, &list)
		if len(list.Reports) != 4 {
			t.Fatalf("actioned: %v", reportIDs(list.Reports))
		}

		// Ban by identity, permanent: until is null.
		clk.Advance(time.Second)
		a.do("POST", "/admin/api/bans", `{"identity": "`+string(hash(300))+`", "duration": "0"}`, 201, &ban)
		if ban.Until != nil || ban.Identity != string(hash(300)) || ban.Reports == nil || len(ban.Reports) != 0 {
			t.Fatalf("permanent ban %+v", ban)
		}
		a.do("GET", "/admin/api/bans", "", 200, &bans)
		if len(bans.Bans) != 2 || bans.Bans[0].Identity != string(hash(300)) || bans.Bans[1].Identity != string(hash(100)) {
			t.Fatalf("bans, newest first: %+v", bans.Bans)
		}

		// Stats: live figures from Live, the rest from the store.
		var stats map[string]int
		a.do("GET", "/admin/api/stats", "", 200, &stats)
		wantStats := map[string]int{"online": 7, "waiting": 2, "chatting": 4, "matchesLastMinute": 3, "reportsLastHour": 5, "bansActive": 2}
		if !reflect.DeepEqual(stats, wantStats) {
			t.Fatalf("stats %v, want %v", stats, wantStats)
		}

		// Unban: 204, the identity can chat again; unknown 404, bad 400.
		a.do("DELETE", "/admin/api/bans/"+string(hash(100)), "", 204, nil)
		if n.Banned(hash(100)) {
			t.Fatal("still banned after DELETE")
		}
		a.do("DELETE", "/admin/api/bans/"+string(hash(100)), "", 404, nil)
		a.do("DELETE", "/admin/api/bans/203.0.113.7", "", 400, nil)

		// Unknown endpoints and methods, in JSON.
		a.do("GET", "/admin/api/nothing", "", 404, nil)
		a.do("PUT", "/admin/api/bans", "", 405, nil)
		a.do("DELETE", "/admin/api/reports/"+string(filed[0].ID), "", 405, nil)
	})
}

// TestAdminAPIAnswersNoAddress: nothing the API answers has the form of an
// IP address, whatever the store holds (it holds only hashes).
func TestAdminAPIAnswersNoAddress(t *testing.T) {
	st, err := modstore.OpenSQLite(ctx, t.TempDir())
	n := newNode(t, mustStore(t, st, err), Config{Threshold: 1, Window: time.Hour})
	if _, err := n.File(ctx, report(1, 2)); err != nil {
		t.Fatal(err)
	}
	a := api{t, n.AdminAPI(fixedLive{})}
	for _, p := range []string{"/admin/api/reports?status=all", "/admin/api/bans"} {
		body := a.do("GET", p, "", 200, nil).Body.String()
		if strings.Contains(body, "127.0.0.1") || strings.Contains(body, "::1") {
			t.Fatalf("%s: %s", p, body)
		}
	}
}

func TestRequireToken(t *testing.T) {
	st, err := modstore.OpenSQLite(ctx, t.TempDir())
	clk := fakeClock()
	n := newNode(t, mustStore(t, st, err), Config{Clock: clk, AuthFailures: 3, AuthFailureEvery: time.Minute})
	reached := 0
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached++; w.WriteHeader(http.StatusTeapot) })
	// The test names the requester by a header standing in for the
	// resolved client identity.
	h := n.RequireToken("s3cret-token", next, func(r *http.Request) identity.Hash { return identity.Hash(r.Header.Get("X-Who")) })
	try := func(who, auth string, status int) {
		t.Helper()
		req := httptest.NewRequest("GET", "/admin/api/stats", nil)
		req.Header.Set("X-Who", who)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != status {
			t.Fatalf("%s with %q: %d, want %d", who, auth, rec.Code, status)
		}
	}
	attacker, admin := string(hash(1)), string(hash(2))
	try(admin, "Bearer s3cret-token", http.StatusTeapot)
	try(attacker, "", http.StatusUnauthorized)
	try(attacker, "Bearer wrong", http.StatusUnauthorized)
	try(attacker, "Basic s3cret-token", http.StatusUnauthorized)
	// Three failures used up: even the right token gets 429 now.
	try(attacker, "Bearer s3cret-token", http.StatusTooManyRequests)
	try(attacker, "Bearer guess", http.StatusTooManyRequests)
	// Others are not affected.
	try(admin, "Bearer s3cret-token", http.StatusTeapot)
	clk.Advance(time.Minute)
	try(attacker, "Bearer s3cret-token", http.StatusTeapot)
	try(attacker, "Bearer wrong", http.StatusUnauthorized)
	try(attacker, "Bearer wrong", http.StatusTooManyRequests)
	if reached != 3 {
		t.Fatalf("next reached %d times, want 3", reached)
	}
	if w, l := counter(t, n.m.authFailures.WithLabelValues("wrong")), counter(t, n.m.authFailures.WithLabelValues("limited")); w != 4 || l != 3 {
		t.Fatalf("auth failures wrong=%v limited=%v, want 4 and 3", w, l)
	}
	// Over a real listener too, through the operator API.
	srv := httptest.NewServer(n.RequireToken("s3cret-token", n.AdminAPI(fixedLive{}), func(*http.Request) identity.Hash { return hash(3) }))
	defer srv.Close()
	for _, c := range []struct {
		auth   string
		status int
	}{{"", 401}, {"Bearer nope", 401}, {"Bearer s3cret-token", 200}} {
		req, _ := http.NewRequest("GET", srv.URL+"/admin/api/stats", nil)
		if c.auth != "" {
			req.Header.Set("Authorization", c.auth)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.status {
			t.Fatalf("%q over HTTP: %d, want %d", c.auth, resp.StatusCode, c.status)
		}
	}
}
