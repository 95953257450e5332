package modstore

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/strangerchat/stranger/internal/identity"
)

func us(t time.Time) int64 { return t.UnixMicro() }

func fromUS(v int64) time.Time { return time.UnixMicro(v).UTC() }

// newReportID returns a random id: 96 bits, so ids made on several nodes at
// once do not collide and cannot be guessed from one another.
func newReportID() ReportID {
	var b [12]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return ReportID("r" + hex.EncodeToString(b[:]))
}

// message is Message as stored in reports.messages.
type message struct {
	From Side   `json:"from"`
	Text string `json:"text"`
	AtUS int64  `json:"at_us"`
}

func validHash(h identity.Hash) bool {
	_, err := identity.ParseHash(string(h))
	return err == nil
}

// AddReport records r as a new open report and returns it as stored: with
// its new ID, status open, no evidence, and times to the microsecond. r's
// ID, Status and Evidence are ignored.
func (s *Store) AddReport(ctx context.Context, r Report) (Report, error) {
	switch {
	case !validHash(r.Reporter) || !validHash(r.Reported):
		return Report{}, invalid("a report needs the reporter's and the reported's identity hashes")
	case r.At.IsZero():
		return Report{}, invalid("a report needs its time")
	case r.Mode == "":
		return Report{}, invalid("a report needs the chat's mode")
	case r.ChatDuration < 0:
		return Report{}, invalid("negative chat duration %v", r.ChatDuration)
	}
	msgs := make([]message, len(r.Messages))
	for i, m := range r.Messages {
		if m.From != SideReporter && m.From != SideReported {
			return Report{}, invalid("message %d from %q, not reporter or reported", i, m.From)
		}
		msgs[i] = message{From: m.From, Text: m.Text, AtUS: us(m.At)}
	}
	interests := r.CommonInterests
	if interests == nil {
		interests = []string{}
	}
	interestsJSON, err := json.Marshal(interests)
	if err != nil {
		return Report{}, fmt.Errorf("modstore: add report: %w", err)
	}
	msgsJSON, err := json.Marshal(msgs)
	if err != nil {
		return Report{}, fmt.Errorf("modstore: add report: %w", err)
	}
	id := newReportID()
	_, err = s.db.ExecContext(ctx, `INSERT INTO reports
		(id, at_us, reason, mode, common_interests, chat_ms, reporter, reported, messages, status)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		string(id), us(r.At), r.Reason, r.Mode, string(interestsJSON), r.ChatDuration.Milliseconds(),
		string(r.Reporter), string(r.Reported), string(msgsJSON), string(StatusOpen))
	if err != nil {
		return Report{}, fmt.Errorf("modstore: add report: %w", err)
	}
	return s.Report(ctx, id)
}

// reportColumns are read by scanReport, in its order.
const reportColumns = `r.id, r.at_us, r.reason, r.mode, r.common_interests, r.chat_ms,
	r.reporter, r.reported, r.messages, r.status, e.report_id IS NOT NULL`

const reportFrom = ` FROM reports r LEFT JOIN evidence e ON e.report_id = r.id `

type scanner interface{ Scan(dest ...any) error }

func scanReport(row scanner) (Report, error) {
	var (
		r                          Report
		id, reporter, reported, st string
		atUS, chatMS               int64
		interestsJSON, msgsJSON    string
	)
	if err := row.Scan(&id, &atUS, &r.Reason, &r.Mode, &interestsJSON, &chatMS,
		&reporter, &reported, &msgsJSON, &st, &r.Evidence); err != nil {
		return Report{}, err
	}
	r.ID, r.At, r.ChatDuration = ReportID(id), fromUS(atUS), time.Duration(chatMS)*time.Millisecond
	r.Reporter, r.Reported, r.Status = identity.Hash(reporter), identity.Hash(reported), Status(st)
	if err := json.Unmarshal([]byte(interestsJSON), &r.CommonInterests); err != nil {
		return Report{}, fmt.Errorf("report %s: interests: %w", id, err)
	}
	var msgs []message
	if err := json.Unmarshal([]byte(msgsJSON), &msgs); err != nil {
		return Report{}, fmt.Errorf("report %s: messages: %w", id, err)
	}
	r.Messages = make([]Message, len(msgs))
	for i, m := range msgs {
		r.Messages[i] = Message{From: m.From, Text: m.Text, At: fromUS(m.AtUS)}
	}
	return r, nil
}

// Report returns one report, or a NotFoundError.
func (s *Store) Report(ctx context.Context, id ReportID) (Report, error) {
	r, err := scanReport(s.db.QueryRowContext(ctx, `SELECT `+reportColumns+reportFrom+`WHERE r.id = $1`, string(id)))
	if err != nil {
		return Report{}, notFound(err, "report", string(id))
	}
	return r, nil
}

// Reports returns the reports q selects, newest first. A Before that names
// no report is a NotFoundError (the page it continued is gone, for instance
// swept).
func (s *Store) Reports(ctx context.Context, q ReportQuery) ([]Report, error) {
	if q.Status != "" && !q.Status.valid() {
		return nil, invalid("unknown report status %q", q.Status)
	}
	if q.Limit < 1 || q.Limit > MaxLimit {
		return nil, invalid("limit %d not in 1–%d", q.Limit, MaxLimit)
	}
	var beforeUS int64
	if q.Before != "" {
		err := s.db.QueryRowContext(ctx, `SELECT at_us FROM reports WHERE id = $1`, string(q.Before)).Scan(&beforeUS)
		if err != nil {
			return nil, notFound(err, "report", string(q.Before))
		}
	}
	// Newest first is (at, id) descending; the page after Before is what
	// sorts after it in that order. The id breaks ties of equal times so
	// that paging neither repeats nor skips a report.
	rows, err := s.db.QueryContext(ctx, `SELECT `+reportColumns+reportFrom+`
		WHERE ($1 = '' OR r.status = $1)
		  AND ($2 = '' OR r.at_us < $3 OR (r.at_us = $3 AND r.id < $2))
		ORDER BY r.at_us DESC, r.id DESC
		LIMIT $4`, string(q.Status), string(q.Before), beforeUS, q.Limit)
	if err != nil {
		return nil, fmt.Errorf("modstore: reports: %w", err)
	}
	defer rows.Close()
	out := []Report{}
	for rows.Next() {
		r, err := scanReport(rows)
		if err != nil {
			return nil, fmt.Errorf("modstore: reports: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("modstore: reports: %w", err)
	}
	return out, nil
}

// ReportsAgainst counts the distinct identities that reported reported at
// or after since, leaving out dismissed reports (a moderator judged those
// unfounded) and reports by the reported identity itself (two people
// behind one address reporting each other): those count neither toward an
// automatic ban, which would otherwise ban the reporter too, nor in the
// console.
func (s *Store) ReportsAgainst(ctx context.Context, reported identity.Hash, since time.Time) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(DISTINCT reporter) FROM reports
		WHERE reported = $1 AND at_us >= $2 AND status <> $3 AND reporter <> reported`,
		string(reported), us(since), string(StatusDismissed)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("modstore: reports against: %w", err)
	}
	return n, nil
}

// MaxReportIDs bounds ReportIDsAgainst: a ban names at most this many
// reports, however many a brigade filed.
const MaxReportIDs = 100

// ReportIDsAgainst returns the ids of the reports ReportsAgainst counts
// (reported at or after since, not dismissed, not by reported itself),
// oldest first, at most MaxReportIDs: the reports a ban of reported acts on.
func (s *Store) ReportIDsAgainst(ctx context.Context, reported identity.Hash, since time.Time) ([]ReportID, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id FROM reports
		WHERE reported = $1 AND at_us >= $2 AND status <> $3 AND reporter <> reported
		ORDER BY at_us, id LIMIT $4`,
		string(reported), us(since), string(StatusDismissed), MaxReportIDs)
	if err != nil {
		return nil, fmt.Errorf("modstore: report ids against: %w", err)
	}
	defer rows.Close()
	out := []ReportID{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("modstore: report ids against: %w", err)
		}
		out = append(out, ReportID(id))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("modstore: report ids against: %w", err)
	}
	return out, nil
}

// Dismiss marks a report dismissed, or returns a NotFoundError.
func (s *Store) Dismiss(ctx context.Context, id ReportID) error {
	return s.setStatus(ctx, s.db, StatusDismissed, []ReportID{id})
}

// MarkActioned marks reports actioned, all or (when one is unknown, a
// NotFoundError) none.
func (s *Store) MarkActioned(ctx context.Context, ids ...ReportID) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("modstore: mark actioned: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if err := s.setStatus(ctx, tx, StatusActioned, ids); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("modstore: mark actioned: %w", err)
	}
	return nil
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func (s *Store) setStatus(ctx context.Context, db execer, st Status, ids []ReportID) error {
	for _, id := range ids {
		res, err := db.ExecContext(ctx, `UPDATE reports SET status = $1 WHERE id = $2`, string(st), string(id))
		if err != nil {
			return fmt.Errorf("modstore: report %s %s: %w", id, st, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("modstore: report %s %s: %w", id, st, err)
		} else if n == 0 {
			return &NotFoundError{What: "report", Key: string(id)}
		}
	}
	return nil
}

// PutEvidence stores the image of report id: a NotFoundError for an
// unknown report, ErrEvidenceExists if it has one already. Checking the
// content type and the size is the caller's (the upload endpoint's).
func (s *Store) PutEvidence(ctx context.Context, id ReportID, ev Evidence) error {
	if ev.ContentType == "" || len(ev.Data) == 0 {
		return invalid("evidence needs a content type and data")
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("modstore: put evidence: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	var one int
	if err := tx.QueryRowContext(ctx, `SELECT 1 FROM reports WHERE id = $1`, string(id)).Scan(&one); err != nil {
		return notFound(err, "report", string(id))
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO evidence (report_id, content_type, size, data)
		VALUES ($1, $2, $3, $4) ON CONFLICT (report_id) DO NOTHING`,
		string(id), ev.ContentType, len(ev.Data), ev.Data)
	if err != nil {
		return fmt.Errorf("modstore: put evidence: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("modstore: put evidence: %w", err)
	} else if n == 0 {
		return ErrEvidenceExists
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("modstore: put evidence: %w", err)
	}
	return nil
}

// Evidence returns the image of report id, or a NotFoundError (no such
// report, or no image for it).
func (s *Store) Evidence(ctx context.Context, id ReportID) (Evidence, error) {
	var ev Evidence
	err := s.db.QueryRowContext(ctx, `SELECT content_type, data FROM evidence WHERE report_id = $1`,
		string(id)).Scan(&ev.ContentType, &ev.Data)
	if err != nil {
		return Evidence{}, notFound(err, "evidence", string(id))
	}
	return ev, nil
}

// EvidenceBytes is the total size of the stored images.
func (s *Store) EvidenceBytes(ctx context.Context) (int64, error) {
	var n int64
	// SUM of a BIGINT is NUMERIC on PostgreSQL; the cast keeps it an integer.
	if err := s.db.QueryRowContext(ctx, `SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM evidence`).Scan(&n); err != nil {
		return 0, fmt.Errorf("modstore: evidence bytes: %w", err)
	}
	return n, nil
}

// PruneDismissedEvidence frees at least need bytes of evidence if it can,
// by deleting the images of dismissed reports, oldest report first (a
// moderator judged those unfounded, so they are the images least worth
// keeping). It deletes no more images than it takes, and none of open or
// actioned reports. It returns the bytes freed and the images deleted;
// fewer bytes than need when the dismissed reports' images do not add up
// to it.
func (s *Store) PruneDismissedEvidence(ctx context.Context, need int64) (freed int64, n int, err error) {
	if need <= 0 {
		return 0, 0, nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, 0, fmt.Errorf("modstore: prune evidence: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	rows, err := tx.QueryContext(ctx, `SELECT e.report_id, e.size FROM evidence e JOIN reports r ON r.id = e.report_id
		WHERE r.status = $1 ORDER BY r.at_us, r.id`, string(StatusDismissed))
	if err != nil {
		return 0, 0, fmt.Errorf("modstore: prune evidence: %w", err)
	}
	var victims []string
	for rows.Next() && freed < need {
		var id string
		var size int64
		if err := rows.Scan(&id, &size); err != nil {
			rows.Close()
			return 0, 0, fmt.Errorf("modstore: prune evidence: %w", err)
		}
		victims = append(victims, id)
		freed += size
	}
	if err := rows.Close(); err != nil {
		return 0, 0, fmt.Errorf("modstore: prune evidence: %w", err)
	}
	for _, id := range victims {
		if _, err := tx.ExecContext(ctx, `DELETE FROM evidence WHERE report_id = $1`, id); err != nil {
			return 0, 0, fmt.Errorf("modstore: prune evidence: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, 0, fmt.Errorf("modstore: prune evidence: %w", err)
	}
	return freed, len(victims), nil
}

// Ban records b and marks b.Reports actioned, in one transaction (a
// NotFoundError for an unknown report changes nothing). If the identity is
// already banned for longer (or for ever), that ban stands as it is: a ban
// never shortens another, so an automatic ban cannot cut short a
// moderator's permanent one; Unban is the way to end a ban early. It returns
// the ban now in force.
func (s *Store) Ban(ctx context.Context, b Ban) (Ban, error) {
	switch {
	case !validHash(b.Identity):
		return Ban{}, invalid("a ban needs an identity hash, not %q", b.Identity)
	case b.Source != SourceAuto && b.Source != SourceModerator:
		return Ban{}, invalid("ban source %q, not auto or moderator", b.Source)
	case b.At.IsZero():
		return Ban{}, invalid("a ban needs its time")
	case !b.Permanent() && !b.Until.After(b.At):
		return Ban{}, invalid("a ban ending at %v, not after it starts", b.Until)
	}
	reports := b.Reports
	if reports == nil {
		reports = []ReportID{}
	}
	reportsJSON, err := json.Marshal(reports)
	if err != nil {
		return Ban{}, fmt.Errorf("modstore: ban: %w", err)
	}
	var until sql.NullInt64
	if !b.Permanent() {
		until = sql.NullInt64{Int64: us(b.Until), Valid: true}
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Ban{}, fmt.Errorf("modstore: ban: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if err := s.setStatus(ctx, tx, StatusActioned, b.Reports); err != nil {
		return Ban{}, err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO bans (identity, until_us, reason, source, reports, at_us)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (identity) DO UPDATE SET until_us = excluded.until_us, reason = excluded.reason,
			source = excluded.source, reports = excluded.reports, at_us = excluded.at_us
		WHERE bans.until_us IS NOT NULL AND (excluded.until_us IS NULL OR excluded.until_us > bans.until_us)`,
		string(b.Identity), until, b.Reason, string(b.Source), string(reportsJSON), us(b.At))
	if err != nil {
		return Ban{}, fmt.Errorf("modstore: ban: %w", err)
	}
	got, err := scanBan(tx.QueryRowContext(ctx, `SELECT `+banColumns+` FROM bans WHERE identity = $1`, string(b.Identity)))
	if err != nil {
		return Ban{}, fmt.Errorf("modstore: ban: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return Ban{}, fmt.Errorf("modstore: ban: %w", err)
	}
	return got, nil
}

const banColumns = `identity, until_us, reason, source, reports, at_us`

func scanBan(row scanner) (Ban, error) {
	var (
		b                          Ban
		ident, source, reportsJSON string
		until                      sql.NullInt64
		atUS                       int64
	)
	if err := row.Scan(&ident, &until, &b.Reason, &source, &reportsJSON, &atUS); err != nil {
		return Ban{}, err
	}
	b.Identity, b.Source, b.At = identity.Hash(ident), Source(source), fromUS(atUS)
	if until.Valid {
		b.Until = fromUS(until.Int64)
	}
	if err := json.Unmarshal([]byte(reportsJSON), &b.Reports); err != nil {
		return Ban{}, fmt.Errorf("ban %s: reports: %w", ident, err)
	}
	return b, nil
}

// BanOf returns the ban in force on id at now, or a NotFoundError.
func (s *Store) BanOf(ctx context.Context, id identity.Hash, now time.Time) (Ban, error) {
	b, err := scanBan(s.db.QueryRowContext(ctx, `SELECT `+banColumns+` FROM bans
		WHERE identity = $1 AND (until_us IS NULL OR until_us > $2)`, string(id), us(now)))
	if err != nil {
		return Ban{}, notFound(err, "ban", string(id))
	}
	return b, nil
}

// ActiveBans returns the bans in force at now, newest first.
func (s *Store) ActiveBans(ctx context.Context, now time.Time) ([]Ban, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+banColumns+` FROM bans
		WHERE until_us IS NULL OR until_us > $1
		ORDER BY at_us DESC, identity DESC`, us(now))
	if err != nil {
		return nil, fmt.Errorf("modstore: active bans: %w", err)
	}
	defer rows.Close()
	out := []Ban{}
	for rows.Next() {
		b, err := scanBan(rows)
		if err != nil {
			return nil, fmt.Errorf("modstore: active bans: %w", err)
		}
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("modstore: active bans: %w", err)
	}
	return out, nil
}

// Unban ends the ban of id, or returns a NotFoundError if it has none
// stored (an expired ban not yet swept counts as stored).
func (s *Store) Unban(ctx context.Context, id identity.Hash) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM bans WHERE identity = $1`, string(id))
	if err != nil {
		return fmt.Errorf("modstore: unban: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("modstore: unban: %w", err)
	} else if n == 0 {
		return &NotFoundError{What: "ban", Key: string(id)}
	}
	return nil
}

// Counts returns the number of reports made at or after reportsSince and
// of bans in force at now.
func (s *Store) Counts(ctx context.Context, reportsSince, now time.Time) (Counts, error) {
	var c Counts
	err := s.db.QueryRowContext(ctx, `SELECT
		(SELECT COUNT(*) FROM reports WHERE at_us >= $1),
		(SELECT COUNT(*) FROM bans WHERE until_us IS NULL OR until_us > $2)`,
		us(reportsSince), us(now)).Scan(&c.ReportsSince, &c.BansActive)
	if err != nil {
		return Counts{}, fmt.Errorf("modstore: counts: %w", err)
	}
	return c, nil
}

// Sweep deletes what the retention period no longer covers: reports made
// before cutoff with their evidence, and bans that ended before cutoff.
// Bans in force are never swept, even when their reports are.
func (s *Store) Sweep(ctx context.Context, cutoff time.Time) (Swept, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Swept{}, fmt.Errorf("modstore: sweep: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	var sw Swept
	for _, step := range []struct {
		n    *int
		stmt string
	}{
		// Evidence first and explicitly (not only by ON DELETE CASCADE) so
		// that the count is known.
		{&sw.Evidence, `DELETE FROM evidence WHERE report_id IN (SELECT id FROM reports WHERE at_us < $1)`},
		{&sw.Reports, `DELETE FROM reports WHERE at_us < $1`},
		{&sw.Bans, `DELETE FROM bans WHERE until_us IS NOT NULL AND until_us < $1`},
	} {
		res, err := tx.ExecContext(ctx, step.stmt, us(cutoff))
		if err != nil {
			return Swept{}, fmt.Errorf("modstore: sweep: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return Swept{}, fmt.Errorf("modstore: sweep: %w", err)
		}
		*step.n = int(n)
	}
	if err := tx.Commit(); err != nil {
		return Swept{}, fmt.Errorf("modstore: sweep: %w", err)
	}
	return sw, nil
}

// keySetting is the settings row holding the identity key.
const keySetting = "identity_key"

// keyBytes is the size of a generated identity key.
const keyBytes = 32

// Key returns the deployment's identity key (identity.NewKeyer), creating
// it on first use. Every Store on the same database returns the same key:
// when several create it at once, one insert wins and all read the winner.
func (s *Store) Key(ctx context.Context) ([]byte, error) {
	fresh := make([]byte, keyBytes)
	_, _ = rand.Read(fresh) // never fails (crypto/rand)
	if _, err := s.db.ExecContext(ctx, `INSERT INTO settings (name, value) VALUES ($1, $2)
		ON CONFLICT (name) DO NOTHING`, keySetting, hex.EncodeToString(fresh)); err != nil {
		return nil, fmt.Errorf("modstore: identity key: %w", err)
	}
	var v string
	if err := s.db.QueryRowContext(ctx, `SELECT value FROM settings WHERE name = $1`, keySetting).Scan(&v); err != nil {
		return nil, fmt.Errorf("modstore: identity key: %w", err)
	}
	key, err := hex.DecodeString(v)
	if err != nil || len(key) < identity.MinKeyBytes {
		return nil, fmt.Errorf("modstore: the stored identity key is not %d or more hex-encoded bytes", identity.MinKeyBytes)
	}
	return key, nil
}
