package modstore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/strangerchat/stranger/internal/identity"
	"github.com/strangerchat/stranger/internal/pgtest"
)

// One PostgreSQL server for the package's tests, started by the first test
// that needs it; each test gets its own database on it.
func TestMain(m *testing.M) { pgtest.Main(m) }

func pgServer(t *testing.T) *pgtest.Server {
	t.Helper()
	return pgtest.Shared(t) // no silent skip: the PostgreSQL backend is half of what is tested
}

// opener opens a new handle on one test database each time it is called:
// several handles are several nodes (or one node restarted).
type opener func() (*Store, error)

// eachBackend runs test against a fresh, empty database of each backend.
func eachBackend(t *testing.T, test func(t *testing.T, open opener)) {
	t.Run("sqlite", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "data", "dir") // created by OpenSQLite
		test(t, func() (*Store, error) { return OpenSQLite(context.Background(), dir) })
	})
	t.Run("postgres", func(t *testing.T) {
		url := pgServer(t).NewDatabase(t)
		test(t, func() (*Store, error) { return OpenPostgres(context.Background(), url) })
	})
}

func mustOpen(t *testing.T, open opener) *Store {
	t.Helper()
	s, err := open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var (
	ctx = context.Background()
	t0  = time.Date(2026, 12, 1, 12, 0, 0, 123456789, time.UTC)
)

// hash makes a valid identity hash from a small number.
func hash(n int) identity.Hash { return identity.Hash(fmt.Sprintf("%016x", n)) }

func sampleReport(at time.Time, reporter, reported int) Report {
	return Report{
		At:              at,
		Reason:          "harassment",
		Mode:            "video",
		CommonInterests: []string{"music", "café"},
		ChatDuration:    95*time.Second + 250*time.Millisecond,
		Reporter:        hash(reporter),
		Reported:        hash(reported),
		Messages: []Message{
			{From: SideReporter, Text: "hi", At: at.Add(-90 * time.Second)},
			{From: SideReported, Text: "line 1\nline 2 \"quoted\" 🙂", At: at.Add(-10 * time.Second)},
		},
	}
}

func add(t *testing.T, s *Store, r Report) Report {
	t.Helper()
	got, err := s.AddReport(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func wantNotFound(t *testing.T, err error, what string) {
	t.Helper()
	var nf *NotFoundError
	if !errors.Is(err, ErrNotFound) || !errors.As(err, &nf) || nf.What != what {
		t.Fatalf("err = %v, want a NotFoundError for a %s", err, what)
	}
}

func ids(rs []Report) []ReportID {
	out := make([]ReportID, len(rs))
	for i, r := range rs {
		out[i] = r.ID
	}
	return out
}

func TestReportRoundTrip(t *testing.T) {
	eachBackend(t, func(t *testing.T, open opener) {
		s := mustOpen(t, open)
		in := sampleReport(t0, 1, 2)
		got := add(t, s, in)
		if got.ID == "" || got.Status != StatusOpen || got.Evidence {
			t.Fatalf("new report %+v: want an id, open, no evidence", got)
		}
		want := in
		want.ID, want.Status = got.ID, StatusOpen
		want.At = t0.Truncate(time.Microsecond)
		for i := range want.Messages {
			want.Messages[i].At = want.Messages[i].At.Truncate(time.Microsecond)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("stored\n %+v\nwant\n %+v", got, want)
		}
		again, err := s.Report(ctx, got.ID)
		if err != nil || !reflect.DeepEqual(again, want) {
			t.Fatalf("Report = %+v, %v\nwant %+v", again, err, want)
		}
		// Empty lists come back empty, not nil, whatever the caller sent.
		bare := add(t, s, Report{At: t0, Mode: "text", Reporter: hash(3), Reported: hash(4)})
		if bare.CommonInterests == nil || len(bare.CommonInterests) != 0 || bare.Messages == nil || len(bare.Messages) != 0 {
			t.Fatalf("bare report lists: %#v %#v", bare.CommonInterests, bare.Messages)
		}
		if other := add(t, s, in); other.ID == got.ID {
			t.Fatalf("two reports got one id %s", got.ID)
		}
	})
}

func TestBadInput(t *testing.T) {
	eachBackend(t, func(t *testing.T, open opener) {
		s := mustOpen(t, open)
		ok := sampleReport(t0, 1, 2)
		for name, mutate := range map[string]func(*Report){
			"no reporter":         func(r *Report) { r.Reporter = "" },
			"raw IP as reported":  func(r *Report) { r.Reported = "203.0.113.7" },
			"no time":             func(r *Report) { r.At = time.Time{} },
			"no mode":             func(r *Report) { r.Mode = "" },
			"negative duration":   func(r *Report) { r.ChatDuration = -time.Second },
			"message from nobody": func(r *Report) { r.Messages[0].From = "partner" },
		} {
			r := ok
			r.Messages = append([]Message(nil), ok.Messages...)
			mutate(&r)
			if _, err := s.AddReport(ctx, r); !errors.Is(err, ErrInvalid) {
				t.Errorf("%s: AddReport err = %v, want ErrInvalid", name, err)
			}
		}
		_, err := s.Report(ctx, "r-unknown")
		wantNotFound(t, err, "report")
		wantNotFound(t, s.Dismiss(ctx, "r-unknown"), "report")
		wantNotFound(t, s.MarkActioned(ctx, "r-unknown"), "report")
		wantNotFound(t, s.PutEvidence(ctx, "r-unknown", Evidence{ContentType: "image/png", Data: []byte{1}}), "report")
		_, err = s.Evidence(ctx, "r-unknown")
		wantNotFound(t, err, "evidence")
		_, err = s.Reports(ctx, ReportQuery{Limit: 10, Before: "r-unknown"})
		wantNotFound(t, err, "report")
		wantNotFound(t, s.Unban(ctx, hash(9)), "ban")
		_, err = s.BanOf(ctx, hash(9), t0)
		wantNotFound(t, err, "ban")

		for _, q := range []ReportQuery{{Limit: 0}, {Limit: MaxLimit + 1}, {Limit: 10, Status: "closed"}} {
			if _, err := s.Reports(ctx, q); !errors.Is(err, ErrInvalid) {
				t.Errorf("Reports(%+v) err = %v, want ErrInvalid", q, err)
			}
		}
		r := add(t, s, ok)
		for name, ev := range map[string]Evidence{"no type": {Data: []byte{1}}, "no data": {ContentType: "image/png"}} {
			if err := s.PutEvidence(ctx, r.ID, ev); !errors.Is(err, ErrInvalid) {
				t.Errorf("PutEvidence %s: err = %v, want ErrInvalid", name, err)
			}
		}
		for name, b := range map[string]Ban{
			"raw IP":        {Identity: "203.0.113.7", Source: SourceAuto, At: t0},
			"no source":     {Identity: hash(1), At: t0},
			"no time":       {Identity: hash(1), Source: SourceAuto},
			"ends at start": {Identity: hash(1), Source: SourceAuto, At: t0, Until: t0},
		} {
			if _, err := s.Ban(ctx, b); !errors.Is(err, ErrInvalid) {
				t.Errorf("Ban %s: err = %v, want ErrInvalid", name, err)
			}
		}
		// A ban naming an unknown report changes nothing: no ban, and the
		// known report it also names stays open.
		_, err = s.Ban(ctx, Ban{Identity: hash(2), Source: SourceModerator, At: t0, Reports: []ReportID{r.ID, "r-unknown"}})
		wantNotFound(t, err, "report")
		if _, err := s.BanOf(ctx, hash(2), t0); !errors.Is(err, ErrNotFound) {
			t.Fatalf("ban recorded despite the unknown report: %v", err)
		}
		if got, _ := s.Report(ctx, r.ID); got.Status != StatusOpen {
			t.Fatalf("report %s after a failed ban, want open", got.Status)
		}
		// MarkActioned is all or nothing too.
		wantNotFound(t, s.MarkActioned(ctx, r.ID, "r-unknown"), "report")
		if got, _ := s.Report(ctx, r.ID); got.Status != StatusOpen {
			t.Fatalf("report %s after a failed MarkActioned, want open", got.Status)
		}
	})
}

func TestReportsListing(t *testing.T) {
	eachBackend(t, func(t *testing.T, open opener) {
		s := mustOpen(t, open)
		// Seven reports a minute apart, and two more at one instant (the id
		// must break the tie so paging neither repeats nor skips).
		var all []Report // oldest first
		for i := range 7 {
			all = append(all, add(t, s, sampleReport(t0.Add(time.Duration(i)*time.Minute), 10+i, 2)))
		}
		for i := range 2 {
			all = append(all, add(t, s, sampleReport(t0.Add(time.Hour), 20+i, 2)))
		}
		newestFirst := func(rs []Report) []ReportID {
			out := ids(rs)
			// reverse, with ties at one time ordered by id descending
			for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
				out[i], out[j] = out[j], out[i]
			}
			if out[0] < out[1] {
				out[0], out[1] = out[1], out[0]
			}
			return out
		}
		want := newestFirst(all)

		got, err := s.Reports(ctx, ReportQuery{Limit: MaxLimit})
		if err != nil || !reflect.DeepEqual(ids(got), want) {
			t.Fatalf("all reports %v, %v\nwant %v", ids(got), err, want)
		}
		// Pages of 2 with the before cursor give the same list.
		var paged []ReportID
		before := ReportID("")
		for {
			page, err := s.Reports(ctx, ReportQuery{Status: StatusOpen, Limit: 2, Before: before})
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			if len(page) > 2 {
				t.Fatalf("page of %d, limit 2", len(page))
			}
			paged = append(paged, ids(page)...)
			before = page[len(page)-1].ID
		}
		if !reflect.DeepEqual(paged, want) {
			t.Fatalf("paged %v\nwant  %v", paged, want)
		}

		// Filtering by status.
		if err := s.Dismiss(ctx, all[1].ID); err != nil {
			t.Fatal(err)
		}
		if err := s.MarkActioned(ctx, all[2].ID, all[3].ID); err != nil {
			t.Fatal(err)
		}
		for st, wantIDs := range map[Status][]ReportID{
			StatusDismissed: {all[1].ID},
			StatusActioned:  {all[3].ID, all[2].ID},
		} {
			got, err := s.Reports(ctx, ReportQuery{Status: st, Limit: 10})
			if err != nil || !reflect.DeepEqual(ids(got), wantIDs) {
				t.Errorf("%s: %v, %v, want %v", st, ids(got), err, wantIDs)
			}
			for _, r := range got {
				if r.Status != st {
					t.Errorf("%s listing holds a %s report", st, r.Status)
				}
			}
		}
		stillOpen, err := s.Reports(ctx, ReportQuery{Status: StatusOpen, Limit: 10})
		if err != nil || len(stillOpen) != len(all)-3 {
			t.Fatalf("open: %d, %v, want %d", len(stillOpen), err, len(all)-3)
		}
		got, _ = s.Reports(ctx, ReportQuery{Limit: 10})
		if len(got) != len(all) {
			t.Fatalf("all statuses: %d reports, want %d", len(got), len(all))
		}
		// The cursor works across statuses: after a dismissed report, the
		// open ones older than it.
		got, err = s.Reports(ctx, ReportQuery{Status: StatusOpen, Limit: 10, Before: all[1].ID})
		if err != nil || !reflect.DeepEqual(ids(got), []ReportID{all[0].ID}) {
			t.Fatalf("open before the dismissed one: %v, %v", ids(got), err)
		}
		// A dismissed report can still be acted on later.
		if err := s.MarkActioned(ctx, all[1].ID); err != nil {
			t.Fatal(err)
		}
		if r, _ := s.Report(ctx, all[1].ID); r.Status != StatusActioned {
			t.Fatalf("status %s, want actioned", r.Status)
		}
	})
}

func TestReportsAgainst(t *testing.T) {
	eachBackend(t, func(t *testing.T, open opener) {
		s := mustOpen(t, open)
		abuser := 100
		add(t, s, sampleReport(t0.Add(-2*time.Hour), 1, abuser)) // outside the window
		add(t, s, sampleReport(t0, 2, abuser))
		add(t, s, sampleReport(t0.Add(time.Minute), 2, abuser)) // same reporter again
		add(t, s, sampleReport(t0.Add(2*time.Minute), 3, abuser))
		dismissed := add(t, s, sampleReport(t0.Add(3*time.Minute), 4, abuser))
		add(t, s, sampleReport(t0, 5, 200))         // someone else
		add(t, s, sampleReport(t0, abuser, abuser)) // behind the same address: never counts
		since := t0.Add(-time.Hour)
		count := func() int {
			n, err := s.ReportsAgainst(ctx, hash(abuser), since)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		if n := count(); n != 3 {
			t.Fatalf("distinct reporters %d, want 3 (2, 3, 4)", n)
		}
		if err := s.Dismiss(ctx, dismissed.ID); err != nil {
			t.Fatal(err)
		}
		if n := count(); n != 2 {
			t.Fatalf("after dismissing one: %d, want 2", n)
		}
		if n, _ := s.ReportsAgainst(ctx, hash(abuser), t0.Add(-3*time.Hour)); n != 3 {
			t.Fatalf("wider window: %d, want 3 (1, 2, 3)", n)
		}
		if n, _ := s.ReportsAgainst(ctx, hash(999), since); n != 0 {
			t.Fatalf("never reported: %d", n)
		}
	})
}

func TestReportIDsAgainst(t *testing.T) {
	eachBackend(t, func(t *testing.T, open opener) {
		s := mustOpen(t, open)
		abuser := 100
		add(t, s, sampleReport(t0.Add(-2*time.Hour), 1, abuser)) // outside the window
		a := add(t, s, sampleReport(t0, 2, abuser))
		b := add(t, s, sampleReport(t0.Add(time.Minute), 2, abuser)) // same reporter again: still a report
		c := add(t, s, sampleReport(t0.Add(2*time.Minute), 3, abuser))
		dismissed := add(t, s, sampleReport(t0.Add(3*time.Minute), 4, abuser))
		add(t, s, sampleReport(t0, abuser, abuser)) // self-report
		add(t, s, sampleReport(t0, 5, 200))         // someone else
		if err := s.Dismiss(ctx, dismissed.ID); err != nil {
			t.Fatal(err)
		}
		got, err := s.ReportIDsAgainst(ctx, hash(abuser), t0.Add(-time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if want := []ReportID{a.ID, b.ID, c.ID}; !reflect.DeepEqual(got, want) {
			t.Fatalf("ReportIDsAgainst = %v, want %v (oldest first)", got, want)
		}
		if got, err := s.ReportIDsAgainst(ctx, hash(999), t0.Add(-time.Hour)); err != nil || got == nil || len(got) != 0 {
			t.Fatalf("never reported: %v, %v; want an empty list", got, err)
		}
		for i := 0; i < MaxReportIDs+5; i++ {
			add(t, s, sampleReport(t0.Add(time.Hour), 1000+i, 300))
		}
		if got, _ := s.ReportIDsAgainst(ctx, hash(300), t0); len(got) != MaxReportIDs {
			t.Fatalf("%d ids, want the bound %d", len(got), MaxReportIDs)
		}
	})
}

func TestPruneDismissedEvidence(t *testing.T) {
	eachBackend(t, func(t *testing.T, open opener) {
		s := mustOpen(t, open)
		put := func(r Report, size int) {
			t.Helper()
			if err := s.PutEvidence(ctx, r.ID, Evidence{ContentType: "image/png", Data: make([]byte, size)}); err != nil {
				t.Fatal(err)
			}
		}
		oldDismissed := add(t, s, sampleReport(t0, 1, 9))
		newDismissed := add(t, s, sampleReport(t0.Add(time.Hour), 2, 9))
		openR := add(t, s, sampleReport(t0.Add(-time.Hour), 3, 9)) // older, but open
		put(oldDismissed, 100)
		put(newDismissed, 200)
		put(openR, 400)
		for _, r := range []Report{oldDismissed, newDismissed} {
			if err := s.Dismiss(ctx, r.ID); err != nil {
				t.Fatal(err)
			}
		}
		if freed, n, err := s.PruneDismissedEvidence(ctx, 0); err != nil || freed != 0 || n != 0 {
			t.Fatalf("need 0: %d, %d, %v", freed, n, err)
		}
		freed, n, err := s.PruneDismissedEvidence(ctx, 50)
		if err != nil || freed != 100 || n != 1 {
			t.Fatalf("need 50: freed %d in %d, %v; want the oldest dismissed image (100 in 1)", freed, n, err)
		}
		_, err = s.Evidence(ctx, oldDismissed.ID)
		wantNotFound(t, err, "evidence")
		if _, err := s.Evidence(ctx, newDismissed.ID); err != nil {
			t.Fatalf("the newer dismissed image went too: %v", err)
		}
		freed, n, err = s.PruneDismissedEvidence(ctx, 10_000)
		if err != nil || freed != 200 || n != 1 {
			t.Fatalf("need more than there is: freed %d in %d, %v; want 200 in 1", freed, n, err)
		}
		if _, err := s.Evidence(ctx, openR.ID); err != nil {
			t.Fatalf("an open report's image was pruned: %v", err)
		}
		if b, _ := s.EvidenceBytes(ctx); b != 400 {
			t.Fatalf("EvidenceBytes = %d, want 400", b)
		}
		if r, _ := s.Report(ctx, oldDismissed.ID); r.Status != StatusDismissed || r.Evidence {
			t.Fatalf("pruned report: %+v, want kept, dismissed, without evidence", r)
		}
	})
}

func TestEvidence(t *testing.T) {
	eachBackend(t, func(t *testing.T, open opener) {
		s := mustOpen(t, open)
		a, b := add(t, s, sampleReport(t0, 1, 2)), add(t, s, sampleReport(t0, 3, 2))
		if n, err := s.EvidenceBytes(ctx); err != nil || n != 0 {
			t.Fatalf("EvidenceBytes empty = %d, %v", n, err)
		}
		_, err := s.Evidence(ctx, a.ID)
		wantNotFound(t, err, "evidence")

		img := make([]byte, 3000) // every byte value, NUL included
		for i := range img {
			img[i] = byte(i)
		}
		if err := s.PutEvidence(ctx, a.ID, Evidence{ContentType: "image/jpeg", Data: img}); err != nil {
			t.Fatal(err)
		}
		if err := s.PutEvidence(ctx, a.ID, Evidence{ContentType: "image/png", Data: []byte{1}}); !errors.Is(err, ErrEvidenceExists) {
			t.Fatalf("second upload: %v, want ErrEvidenceExists", err)
		}
		if err := s.PutEvidence(ctx, b.ID, Evidence{ContentType: "image/webp", Data: []byte("RIFF")}); err != nil {
			t.Fatal(err)
		}
		ev, err := s.Evidence(ctx, a.ID)
		if err != nil || ev.ContentType != "image/jpeg" || !reflect.DeepEqual(ev.Data, img) {
			t.Fatalf("Evidence = %q %d bytes, %v; want the first upload", ev.ContentType, len(ev.Data), err)
		}
		if n, err := s.EvidenceBytes(ctx); err != nil || n != int64(len(img)+4) {
			t.Fatalf("EvidenceBytes = %d, %v, want %d", n, err, len(img)+4)
		}
		for _, id := range []ReportID{a.ID, b.ID} {
			if r, _ := s.Report(ctx, id); !r.Evidence {
				t.Fatalf("report %s: Evidence false after upload", id)
			}
		}
		list, _ := s.Reports(ctx, ReportQuery{Limit: 10})
		for _, r := range list {
			if !r.Evidence {
				t.Fatalf("listed report %s: Evidence false", r.ID)
			}
		}
	})
}

func TestBans(t *testing.T) {
	eachBackend(t, func(t *testing.T, open opener) {
		s := mustOpen(t, open)
		r1, r2 := add(t, s, sampleReport(t0, 1, 50)), add(t, s, sampleReport(t0, 2, 50))
		auto := Ban{Identity: hash(50), Until: t0.Add(24 * time.Hour), Reason: "3 reports", Source: SourceAuto,
			Reports: []ReportID{r1.ID, r2.ID}, At: t0}
		got, err := s.Ban(ctx, auto)
		want := auto
		want.Until, want.At = auto.Until.Truncate(time.Microsecond), auto.At.Truncate(time.Microsecond)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("Ban = %+v, %v\nwant %+v", got, err, want)
		}
		for _, id := range []ReportID{r1.ID, r2.ID} {
			if r, _ := s.Report(ctx, id); r.Status != StatusActioned {
				t.Fatalf("report %s is %s after the ban, want actioned", id, r.Status)
			}
		}
		if b, err := s.BanOf(ctx, hash(50), t0.Add(time.Hour)); err != nil || !reflect.DeepEqual(b, want) {
			t.Fatalf("BanOf in force = %+v, %v", b, err)
		}
		_, err = s.BanOf(ctx, hash(50), t0.Add(24*time.Hour))
		wantNotFound(t, err, "ban") // ended: until is exclusive

		// A permanent moderator ban, later.
		perm := Ban{Identity: hash(60), Reason: "threats", Source: SourceModerator, At: t0.Add(time.Minute)}
		if got, err := s.Ban(ctx, perm); err != nil || !got.Permanent() || got.Reports == nil {
			t.Fatalf("permanent ban = %+v, %v", got, err)
		}
		// An expired ban, earlier.
		if _, err := s.Ban(ctx, Ban{Identity: hash(70), Until: t0.Add(-time.Hour), Source: SourceAuto, At: t0.Add(-2 * time.Hour)}); err != nil {
			t.Fatal(err)
		}
		active, err := s.ActiveBans(ctx, t0.Add(time.Hour))
		if err != nil || len(active) != 2 || active[0].Identity != hash(60) || active[1].Identity != hash(50) {
			t.Fatalf("ActiveBans = %+v, %v; want 60 then 50", active, err)
		}
		if b, err := s.BanOf(ctx, hash(60), t0.Add(100*365*24*time.Hour)); err != nil || !b.Permanent() {
			t.Fatalf("permanent ban in a century: %+v, %v", b, err)
		}

		// A ban never shortens another: a shorter automatic ban leaves the
		// longer one and the permanent one as they are...
		if got, err := s.Ban(ctx, Ban{Identity: hash(60), Until: t0.Add(48 * time.Hour), Source: SourceAuto, At: t0.Add(time.Hour)}); err != nil || !got.Permanent() || got.Source != SourceModerator {
			t.Fatalf("auto ban over a permanent one: %+v, %v", got, err)
		}
		if got, err := s.Ban(ctx, Ban{Identity: hash(50), Until: t0.Add(time.Hour + time.Minute), Source: SourceAuto, At: t0.Add(time.Hour)}); err != nil || !got.Until.Equal(want.Until) {
			t.Fatalf("shorter ban over a longer one: %+v, %v", got, err)
		}
		// ...a longer one replaces it, and so does any ban after it expired.
		longer := Ban{Identity: hash(50), Source: SourceModerator, Reason: "permanent now", At: t0.Add(2 * time.Hour)}
		if got, err := s.Ban(ctx, longer); err != nil || !got.Permanent() || got.Reason != "permanent now" {
			t.Fatalf("permanent over a day's ban: %+v, %v", got, err)
		}
		renewed := Ban{Identity: hash(70), Until: t0.Add(time.Hour), Source: SourceAuto, At: t0}
		if got, err := s.Ban(ctx, renewed); err != nil || !got.Until.Equal(renewed.Until.Truncate(time.Microsecond)) {
			t.Fatalf("ban after an expired one: %+v, %v", got, err)
		}

		c, err := s.Counts(ctx, t0.Add(-time.Minute), t0.Add(30*time.Minute))
		if err != nil || c != (Counts{ReportsSince: 2, BansActive: 3}) {
			t.Fatalf("Counts = %+v, %v", c, err)
		}
		if c, _ := s.Counts(ctx, t0.Add(time.Minute), t0.Add(2*time.Hour)); c != (Counts{ReportsSince: 0, BansActive: 2}) {
			t.Fatalf("later Counts = %+v", c)
		}

		if err := s.Unban(ctx, hash(50)); err != nil {
			t.Fatal(err)
		}
		_, err = s.BanOf(ctx, hash(50), t0)
		wantNotFound(t, err, "ban")
		wantNotFound(t, s.Unban(ctx, hash(50)), "ban")
		if active, _ := s.ActiveBans(ctx, t0.Add(30*time.Minute)); len(active) != 2 {
			t.Fatalf("after unban: %d active, want 2", len(active))
		}
	})
}

func TestSweep(t *testing.T) {
	eachBackend(t, func(t *testing.T, open opener) {
		s := mustOpen(t, open)
		cutoff := t0.Add(-30 * 24 * time.Hour)
		old1 := add(t, s, sampleReport(cutoff.Add(-time.Hour), 1, 2))
		old2 := add(t, s, sampleReport(cutoff.Add(-time.Microsecond), 3, 2))
		edge := add(t, s, sampleReport(cutoff, 4, 2)) // at the cutoff: kept
		fresh := add(t, s, sampleReport(t0, 5, 2))
		for _, id := range []ReportID{old1.ID, edge.ID, fresh.ID} {
			if err := s.PutEvidence(ctx, id, Evidence{ContentType: "image/png", Data: make([]byte, 100)}); err != nil {
				t.Fatal(err)
			}
		}
		bans := []Ban{
			{Identity: hash(1), Until: cutoff.Add(-time.Second), Source: SourceAuto, At: cutoff.Add(-time.Hour)},   // ended before: swept
			{Identity: hash(2), Until: t0.Add(time.Hour), Source: SourceAuto, At: cutoff.Add(-time.Hour)},          // in force: kept
			{Identity: hash(3), Source: SourceModerator, At: cutoff.Add(-time.Hour), Reports: []ReportID{old1.ID}}, // permanent: kept
		}
		for _, b := range bans {
			if _, err := s.Ban(ctx, b); err != nil {
				t.Fatal(err)
			}
		}
		sw, err := s.Sweep(ctx, cutoff)
		if err != nil || sw != (Swept{Reports: 2, Evidence: 1, Bans: 1}) {
			t.Fatalf("Sweep = %+v, %v", sw, err)
		}
		for _, id := range []ReportID{old1.ID, old2.ID} {
			_, err := s.Report(ctx, id)
			wantNotFound(t, err, "report")
			_, err = s.Evidence(ctx, id)
			wantNotFound(t, err, "evidence")
		}
		for _, id := range []ReportID{edge.ID, fresh.ID} {
			if _, err := s.Evidence(ctx, id); err != nil {
				t.Fatalf("evidence of kept report %s: %v", id, err)
			}
		}
		if n, _ := s.EvidenceBytes(ctx); n != 200 {
			t.Fatalf("EvidenceBytes after sweep = %d, want 200", n)
		}
		active, _ := s.ActiveBans(ctx, t0)
		if len(active) != 2 {
			t.Fatalf("active bans after sweep: %+v", active)
		}
		if sw, _ := s.Sweep(ctx, cutoff); sw != (Swept{}) {
			t.Fatalf("second sweep deleted %+v", sw)
		}
	})
}

// Everything written is there after the handle is closed and the database
// opened again: a node's restart.
func TestRestartDurability(t *testing.T) {
	eachBackend(t, func(t *testing.T, open opener) {
		s, err := open()
		if err != nil {
			t.Fatal(err)
		}
		key, err := s.Key(ctx)
		if err != nil {
			t.Fatal(err)
		}
		r, err := s.AddReport(ctx, sampleReport(t0, 1, 2))
		if err != nil {
			t.Fatal(err)
		}
		d := add(t, s, sampleReport(t0.Add(time.Second), 3, 2))
		if err := s.Dismiss(ctx, d.ID); err != nil {
			t.Fatal(err)
		}
		if err := s.PutEvidence(ctx, r.ID, Evidence{ContentType: "image/png", Data: []byte("png")}); err != nil {
			t.Fatal(err)
		}
		r.Evidence = true
		ban, err := s.Ban(ctx, Ban{Identity: hash(2), Source: SourceModerator, Reason: "r", At: t0, Reports: []ReportID{r.ID}})
		if err != nil {
			t.Fatal(err)
		}
		r.Status = StatusActioned
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}

		s2 := mustOpen(t, open)
		if k2, err := s2.Key(ctx); err != nil || !reflect.DeepEqual(k2, key) {
			t.Fatalf("key after restart %x, %v; want %x", k2, err, key)
		}
		if got, err := s2.Report(ctx, r.ID); err != nil || !reflect.DeepEqual(got, r) {
			t.Fatalf("report after restart %+v, %v\nwant %+v", got, err, r)
		}
		if got, err := s2.Report(ctx, d.ID); err != nil || got.Status != StatusDismissed {
			t.Fatalf("dismissed report after restart %+v, %v", got, err)
		}
		if ev, err := s2.Evidence(ctx, r.ID); err != nil || string(ev.Data) != "png" {
			t.Fatalf("evidence after restart %+v, %v", ev, err)
		}
		if got, err := s2.BanOf(ctx, hash(2), t0.Add(time.Hour)); err != nil || !reflect.DeepEqual(got, ban) {
			t.Fatalf("ban after restart %+v, %v\nwant %+v", got, err, ban)
		}
	})
}

// Several nodes asking for the key at once, on a database without one,
// all get the same key, and it is usable by identity.NewKeyer.
func TestKeyCreatedOnce(t *testing.T) {
	eachBackend(t, func(t *testing.T, open opener) {
		const nodes = 4
		stores := make([]*Store, nodes)
		for i := range stores {
			stores[i] = mustOpen(t, open)
		}
		keys := make([][]byte, nodes)
		errs := make([]error, nodes)
		var start, done sync.WaitGroup
		start.Add(1)
		for i, s := range stores {
			done.Add(1)
			go func() {
				defer done.Done()
				start.Wait()
				keys[i], errs[i] = s.Key(ctx)
			}()
		}
		start.Done()
		done.Wait()
		for i := range keys {
			if errs[i] != nil {
				t.Fatalf("node %d: %v", i, errs[i])
			}
			if !reflect.DeepEqual(keys[i], keys[0]) {
				t.Fatalf("node %d got key %x, node 0 %x", i, keys[i], keys[0])
			}
		}
		if len(keys[0]) != keyBytes {
			t.Fatalf("key of %d bytes, want %d", len(keys[0]), keyBytes)
		}
		if _, err := identity.NewKeyer(keys[0]); err != nil {
			t.Fatal(err)
		}
		if again, _ := stores[0].Key(ctx); !reflect.DeepEqual(again, keys[0]) {
			t.Fatalf("second call on one handle gave another key")
		}
	})
}

func migrationVersions(t *testing.T, s *Store) []int {
	t.Helper()
	rows, err := s.db.QueryContext(ctx, `SELECT version FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var vs []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		vs = append(vs, v)
	}
	return vs
}

// Two nodes starting at once on an empty database both come up, the schema
// is created once, migrating again changes nothing, and a database from a
// newer program is refused rather than used.
func TestMigrations(t *testing.T) {
	eachBackend(t, func(t *testing.T, open opener) {
		var wantVersions []int
		for v := 1; v <= len(migrations); v++ {
			wantVersions = append(wantVersions, v)
		}
		stores := make([]*Store, 2)
		errs := make([]error, 2)
		var wg sync.WaitGroup
		for i := range stores {
			wg.Add(1)
			go func() { defer wg.Done(); stores[i], errs[i] = open() }()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("node %d: %v", i, err)
			}
			t.Cleanup(func() { stores[i].Close() })
		}
		s := stores[0]
		r := add(t, s, sampleReport(t0, 1, 2))
		if got := migrationVersions(t, s); !reflect.DeepEqual(got, wantVersions) {
			t.Fatalf("versions %v, want %v", got, wantVersions)
		}
		if err := s.migrate(ctx); err != nil {
			t.Fatalf("migrating again: %v", err)
		}
		s3 := mustOpen(t, open)
		if got := migrationVersions(t, s3); !reflect.DeepEqual(got, wantVersions) {
			t.Fatalf("versions after reopening %v, want %v", got, wantVersions)
		}
		if _, err := s3.Report(ctx, r.ID); err != nil {
			t.Fatalf("data lost by migrating again: %v", err)
		}

		if _, err := s.db.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_us) VALUES ($1, 0)`, len(migrations)+1); err != nil {
			t.Fatal(err)
		}
		if s4, err := open(); err == nil {
			s4.Close()
			t.Fatal("opened a database whose schema is newer than the program")
		}
	})
}

// The SQLite handle runs with the settings OpenSQLite asks for; a typo in
// the DSN would otherwise be ignored silently and show only under load.
func TestSQLiteSettings(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new dir?#%20") // kept literally, not read as URI syntax
	s := mustOpen(t, func() (*Store, error) { return OpenSQLite(ctx, dir) })
	if _, err := os.Stat(filepath.Join(dir, DBFile)); err != nil {
		t.Fatalf("database file: %v", err)
	}
	for pragma, want := range map[string]string{"journal_mode": "wal", "busy_timeout": "10000", "foreign_keys": "1"} {
		var got string
		if err := s.db.QueryRowContext(ctx, "PRAGMA "+pragma).Scan(&got); err != nil || got != want {
			t.Errorf("PRAGMA %s = %q, %v; want %q", pragma, got, err, want)
		}
	}
}
