package moderation

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/strangerchat/stranger/internal/identity"
	"github.com/strangerchat/stranger/internal/modstore"
)

// Live gives the operator's live figures across the deployment; the node
// implements it from its hub and engine.
type Live interface {
	Online() int
	Waiting() int
	Chatting() int
	MatchesLastMinute() int
}

// maxAdminBody bounds the JSON body of an operator API request.
const maxAdminBody = 4 << 10

// maxReasonRunes bounds a moderator's ban reason.
const maxReasonRunes = 500

// The JSON shapes of the contract.

type messageJSON struct {
	From string    `json:"from"`
	Text string    `json:"text"`
	At   time.Time `json:"at"`
}

type reportJSON struct {
	ID              modstore.ReportID `json:"id"`
	At              time.Time         `json:"at"`
	Reason          string            `json:"reason"`
	Mode            string            `json:"mode"`
	CommonInterests []string          `json:"commonInterests"`
	ChatSeconds     float64           `json:"chatSeconds"`
	Reporter        identity.Hash     `json:"reporter"`
	Reported        identity.Hash     `json:"reported"`
	Messages        []messageJSON     `json:"messages"`
	Evidence        bool              `json:"evidence"`
	Status          modstore.Status   `json:"status"`
	ReportsAgainst  *int              `json:"reportsAgainst,omitempty"` // GET one report only
}

func toReportJSON(r modstore.Report) reportJSON {
	out := reportJSON{
		ID: r.ID, At: r.At, Reason: r.Reason, Mode: r.Mode, CommonInterests: r.CommonInterests,
		ChatSeconds: r.ChatDuration.Seconds(), Reporter: r.Reporter, Reported: r.Reported,
		Messages: make([]messageJSON, len(r.Messages)), Evidence: r.Evidence, Status: r.Status,
	}
	if out.CommonInterests == nil {
		out.CommonInterests = []string{}
	}
	for i, m := range r.Messages {
		out.Messages[i] = messageJSON{From: string(m.From), Text: m.Text, At: m.At}
	}
	return out
}

type banJSON struct {
	Identity identity.Hash       `json:"identity"`
	Until    *time.Time          `json:"until"` // null: permanent
	Reason   string              `json:"reason"`
	Source   modstore.Source     `json:"source"`
	Reports  []modstore.ReportID `json:"reports"`
	At       time.Time           `json:"at"`
}

func toBanJSON(b modstore.Ban) banJSON {
	out := banJSON{Identity: b.Identity, Reason: b.Reason, Source: b.Source, Reports: b.Reports, At: b.At}
	if !b.Permanent() {
		until := b.Until
		out.Until = &until
	}
	if out.Reports == nil {
		out.Reports = []modstore.ReportID{}
	}
	return out
}

type banRequest struct {
	Report   modstore.ReportID `json:"report"`
	Identity identity.Hash     `json:"identity"`
	Duration *string           `json:"duration"`
	Reason   string            `json:"reason"`
}

type statsJSON struct {
	Online            int `json:"online"`
	Waiting           int `json:"waiting"`
	Chatting          int `json:"chatting"`
	MatchesLastMinute int `json:"matchesLastMinute"`
	ReportsLastHour   int `json:"reportsLastHour"`
	BansActive        int `json:"bansActive"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // a failed write is the client's going away
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

// adminRoutes are the operator API's endpoints, by pattern.
var adminRoutes = []string{
	"GET /admin/api/reports",
	"GET /admin/api/reports/{id}",
	"GET /admin/api/reports/{id}/evidence",
	"POST /admin/api/reports/{id}/dismiss",
	"POST /admin/api/bans",
	"GET /admin/api/bans",
	"DELETE /admin/api/bans/{identity}",
	"GET /admin/api/stats",
}

// AdminAPI serves the operator API of the contract under /admin/api/.
// It does no authentication: serve it as it is on the admin listener, and
// through RequireToken on the public one. live must not be nil.
func (s *Service) AdminAPI(live Live) http.Handler {
	if live == nil {
		panic("moderation: AdminAPI needs a Live")
	}
	a := &adminAPI{s: s, live: live}
	handlers := []http.HandlerFunc{a.listReports, a.getReport, a.getEvidence, a.dismiss, a.ban, a.listBans, a.unban, a.stats}
	mux := http.NewServeMux()
	// shapes knows the paths without their methods, to tell a wrong method
	// (405) from an unknown path (404), both in JSON.
	shapes := http.NewServeMux()
	paths := map[string]bool{}
	for i, pattern := range adminRoutes {
		mux.HandleFunc(pattern, handlers[i])
		if _, path, _ := strings.Cut(pattern, " "); !paths[path] {
			paths[path] = true
			shapes.HandleFunc(path, func(http.ResponseWriter, *http.Request) {})
		}
	}
	mux.HandleFunc("/admin/api/", func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := shapes.Handler(r); pattern != "" {
			writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("%s is not allowed on %s", r.Method, r.URL.Path))
			return
		}
		writeError(w, http.StatusNotFound, "no such endpoint: "+r.URL.Path)
	})
	return mux
}

type adminAPI struct {
	s    *Service
	live Live
}

// storeError answers a store error: 404 for what is not there, 400 for
// what the store refused as invalid, 500 (logged, not shown) otherwise.
func (a *adminAPI) storeError(w http.ResponseWriter, err error) {
	var nf *modstore.NotFoundError
	switch {
	case errors.As(err, &nf):
		writeError(w, http.StatusNotFound, fmt.Sprintf("%s %s not found", nf.What, nf.Key))
	case errors.Is(err, modstore.ErrInvalid):
		writeError(w, http.StatusBadRequest, strings.TrimPrefix(err.Error(), "modstore: "))
	default:
		a.s.log.Error("moderation: operator API", "err", err)
		writeError(w, http.StatusInternalServerError, "internal error (logged)")
	}
}

func (a *adminAPI) listReports(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	query := modstore.ReportQuery{Status: modstore.StatusOpen, Limit: 50, Before: modstore.ReportID(q.Get("before"))}
	switch st := q.Get("status"); st {
	case "":
	case "all":
		query.Status = ""
	case string(modstore.StatusOpen), string(modstore.StatusDismissed), string(modstore.StatusActioned):
		query.Status = modstore.Status(st)
	default:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("status %q: want open, dismissed, actioned or all", st))
		return
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > modstore.MaxLimit {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("limit %q: want a number from 1 to %d", l, modstore.MaxLimit))
			return
		}
		query.Limit = n
	}
	reports, err := a.s.store.Reports(r.Context(), query)
	var nf *modstore.NotFoundError
	if errors.As(err, &nf) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("before: report %s not found (swept, or not an id)", query.Before))
		return
	}
	if err != nil {
		a.storeError(w, err)
		return
	}
	out := make([]reportJSON, len(reports))
	for i, rep := range reports {
		out[i] = toReportJSON(rep)
	}
	writeJSON(w, http.StatusOK, map[string]any{"reports": out})
}

func (a *adminAPI) getReport(w http.ResponseWriter, r *http.Request) {
	rep, err := a.s.store.Report(r.Context(), modstore.ReportID(r.PathValue("id")))
	if err != nil {
		a.storeError(w, err)
		return
	}
	out := toReportJSON(rep)
	if a.s.cfg.Window > 0 {
		n, err := a.s.store.ReportsAgainst(r.Context(), rep.Reported, a.s.clock.Now().Add(-a.s.cfg.Window))
		if err != nil {
			a.storeError(w, err)
			return
		}
		out.ReportsAgainst = &n
	} else {
		zero := 0
		out.ReportsAgainst = &zero
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *adminAPI) getEvidence(w http.ResponseWriter, r *http.Request) {
	ev, err := a.s.store.Evidence(r.Context(), modstore.ReportID(r.PathValue("id")))
	if err != nil {
		a.storeError(w, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", ev.ContentType)
	h.Set("Content-Length", strconv.Itoa(len(ev.Data)))
	h.Set("Cache-Control", "no-store") // not kept in the moderator's browser cache
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(ev.Data)
}

func (a *adminAPI) dismiss(w http.ResponseWriter, r *http.Request) {
	if err := a.s.store.Dismiss(r.Context(), modstore.ReportID(r.PathValue("id"))); err != nil {
		a.storeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// decodeBody decodes a JSON body of at most maxAdminBody bytes with no
// unknown fields and nothing after it.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxAdminBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return fmt.Errorf("body larger than %d bytes", maxAdminBody)
		}
		return fmt.Errorf("bad JSON body: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("bad JSON body: more than one value")
	}
	return nil
}

func (a *adminAPI) ban(w http.ResponseWriter, r *http.Request) {
	var req banRequest
	if err := decodeBody(w, r, &req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if (req.Report == "") == (req.Identity == "") {
		writeError(w, http.StatusBadRequest, `give "report" or "identity", one of them`)
		return
	}
	if req.Duration == nil {
		writeError(w, http.StatusBadRequest, `"duration" is required: a Go duration such as "24h", or "0" for permanent`)
		return
	}
	d, err := time.ParseDuration(*req.Duration)
	if err != nil || d < 0 {
		writeError(w, http.StatusBadRequest, fmt.Sprintf(`duration %q: want a Go duration such as "24h" or "168h", or "0" for permanent`, *req.Duration))
		return
	}
	if utf8.RuneCountInString(req.Reason) > maxReasonRunes || !utf8.ValidString(req.Reason) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("reason: at most %d characters of UTF-8", maxReasonRunes))
		return
	}
	ctx := r.Context()
	now := a.s.clock.Now()
	target := req.Identity
	var named []modstore.ReportID
	if req.Report != "" {
		rep, err := a.s.store.Report(ctx, req.Report)
		if err != nil {
			a.storeError(w, err)
			return
		}
		target, named = rep.Reported, []modstore.ReportID{rep.ID}
	} else if _, err := identity.ParseHash(string(target)); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("identity %q: %v", target, err))
		return
	}
	// The ban acts on every report still kept against the identity (not
	// dismissed, not a self-report), not only the one clicked, so that the
	// queue does not keep showing reports already dealt with.
	since := now.Add(-a.s.cfg.Retention)
	others, err := a.s.store.ReportIDsAgainst(ctx, target, since)
	if err != nil {
		a.storeError(w, err)
		return
	}
	for _, id := range others {
		if len(named) == 0 || id != named[0] {
			named = append(named, id)
		}
	}
	b := modstore.Ban{Identity: target, Reason: req.Reason, Source: modstore.SourceModerator, Reports: named, At: now}
	if d > 0 {
		b.Until = now.Add(d)
	}
	got, err := a.s.Ban(ctx, b)
	if err != nil {
		a.storeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, toBanJSON(got))
}

func (a *adminAPI) listBans(w http.ResponseWriter, r *http.Request) {
	bans, err := a.s.store.ActiveBans(r.Context(), a.s.clock.Now())
	if err != nil {
		a.storeError(w, err)
		return
	}
	out := make([]banJSON, len(bans))
	for i, b := range bans {
		out[i] = toBanJSON(b)
	}
	writeJSON(w, http.StatusOK, map[string]any{"bans": out})
}

func (a *adminAPI) unban(w http.ResponseWriter, r *http.Request) {
	h, err := identity.ParseHash(r.PathValue("identity"))
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("identity %q: %v", r.PathValue("identity"), err))
		return
	}
	if err := a.s.Unban(r.Context(), h); err != nil {
		a.storeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *adminAPI) stats(w http.ResponseWriter, r *http.Request) {
	now := a.s.clock.Now()
	c, err := a.s.store.Counts(r.Context(), now.Add(-time.Hour), now)
	if err != nil {
		a.storeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, statsJSON{
		Online: a.live.Online(), Waiting: a.live.Waiting(), Chatting: a.live.Chatting(),
		MatchesLastMinute: a.live.MatchesLastMinute(),
		ReportsLastHour:   c.ReportsSince, BansActive: c.BansActive,
	})
}

// RequireToken lets a request through to next only with the header
// "Authorization: Bearer <token>" (compared in constant time), for the
// operator API and console on the public listener. who names the
// requester's identity: after AuthFailures failed attempts from one
// identity (one more allowed per AuthFailureEvery) every request from it
// gets 429 without its token being looked at, so the token cannot be
// guessed at speed. token must not be empty.
func (s *Service) RequireToken(token string, next http.Handler, who func(*http.Request) identity.Hash) http.Handler {
	if token == "" {
		panic("moderation: RequireToken with an empty token")
	}
	want := sha256.Sum256([]byte(token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := who(r)
		now := s.clock.Now()
		if s.authLimit.empty(h, now) {
			s.m.authFailures.WithLabelValues("limited").Inc()
			w.Header().Set("Retry-After", strconv.Itoa(int(s.cfg.AuthFailureEvery.Seconds()+0.5)))
			writeError(w, http.StatusTooManyRequests, "too many failed attempts; try again later")
			return
		}
		got, _ := bearer(r)
		// Hashing first makes the comparison's time independent of the
		// lengths too.
		have := sha256.Sum256([]byte(got))
		if subtle.ConstantTimeCompare(have[:], want[:]) != 1 {
			s.authLimit.take(h, now)
			s.m.authFailures.WithLabelValues("wrong").Inc()
			s.log.Warn("moderation: operator API request with a missing or wrong token", "identity", h, "path", r.URL.Path)
			w.Header().Set("WWW-Authenticate", "Bearer")
			writeError(w, http.StatusUnauthorized, "an operator token is required (Authorization: Bearer)")
			return
		}
		next.ServeHTTP(w, r)
	})
}
