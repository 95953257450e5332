package signaling

import (
	"context"
	"errors"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/strangerchat/stranger/internal/identity"
	"github.com/strangerchat/stranger/internal/ids"
	"github.com/strangerchat/stranger/internal/match"
	"github.com/strangerchat/stranger/internal/protocol"
)

// Per-identity quotas (docs/security.md, "Quotas"). An identity is the
// client IP as /32 or /64 (package identity), so one household, one bot or
// one IPv6 host counts once however many addresses it uses. What is counted
// is what costs the node: a session from admission until it ends (its
// grace period included, which a reset TCP connection would otherwise get
// for free), connection attempts, and places in the queue. The registry's
// h.mu guards all of it.

// Refusal reasons: the label of stranger_quota_refusals_total.
const (
	refusedConnRate   = "conn_rate"        // connection attempts per identity
	refusedSessions   = "sessions_per_ip"  // sessions per identity
	refusedNodeFull   = "max_sessions"     // sessions per node
	refusedWaiting    = "waiting_per_ip"   // waiting sessions per identity
	refusedRequeue    = "next_rate"        // join/next per session
	refusedLateResume = "resume_then_full" // resume failed after the upgrade, no room for a new session
)

var refusalReasons = []string{refusedConnRate, refusedSessions, refusedNodeFull, refusedWaiting, refusedRequeue, refusedLateResume}

// closeTryAgain (RFC 6455 1013, Try Again Later) closes a connection whose
// resume failed after the upgrade when there is no room for a new session.
const closeTryAgain = 1013

// identityUse is what one identity holds on this node.
type identityUse struct {
	sessions map[*session]struct{} // registered, counted until unregistered
	reserved int                   // admitted connections whose new session is not registered yet
	queueing int                   // join/next calls on their way to the engine
}

func (u *identityUse) idle() bool { return len(u.sessions) == 0 && u.reserved == 0 && u.queueing == 0 }

// identityOf is the identity of a client IP; not valid (no per-identity
// quota) if ip does not parse, which clientIP never returns for TCP peers.
func identityOf(ip string) identity.Identity {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return identity.Identity{}
	}
	id, _ := identity.FromAddr(a)
	return id
}

// useLocked returns id's entry, creating it.
func (h *Hub) useLocked(id identity.Identity) *identityUse {
	u := h.use[id]
	if u == nil {
		u = &identityUse{sessions: map[*session]struct{}{}}
		h.use[id] = u
	}
	return u
}

func (h *Hub) tidyLocked(id identity.Identity) {
	if u := h.use[id]; u != nil && u.idle() {
		delete(h.use, id)
	}
}

func (h *Hub) refused(reason string) { h.metrics.QuotaRefusals.WithLabelValues(reason).Inc() }

// allowAttempt takes a token from id's connection-attempt bucket. If there
// is none it returns how long until there is one (for Retry-After).
func (h *Hub) allowAttempt(id identity.Identity, now time.Time) (retry time.Duration, ok bool) {
	rate, burst := h.opts.ConnRate, h.opts.ConnBurst
	if rate <= 0 || !id.IsValid() {
		return 0, true
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.sweepAttemptsLocked(now)
	b := h.attempts[id]
	if b == nil {
		b = &bucket{}
		h.attempts[id] = b
	}
	if b.take(now, rate, burst) {
		return 0, true
	}
	return time.Duration((1 - b.tokens) / rate * float64(time.Second)), false
}

// sweepAttemptsLocked forgets, at most once a minute, the buckets that have
// refilled: they are the same as no bucket. A bucket is kept after its
// connections close, or closing and reconnecting would reset it.
func (h *Hub) sweepAttemptsLocked(now time.Time) {
	if now.Sub(h.attemptsSwept) < time.Minute {
		return
	}
	h.attemptsSwept = now
	full := time.Duration(float64(h.opts.ConnBurst) / h.opts.ConnRate * float64(time.Second))
	for id, b := range h.attempts {
		if now.Sub(b.last) >= full {
			delete(h.attempts, id)
		}
	}
}

// retryAfter is a Retry-After value: whole seconds, at least 1.
func retryAfter(d time.Duration) string {
	return strconv.Itoa(max(1, int(math.Ceil(d.Seconds()))))
}

// reserve makes room for a new session of id: under the per-identity cap
// (sessions in grace count) and the node's --max-sessions, counting the
// reservations not yet registered so that concurrent admissions cannot
// pass either cap together. A refusal is an HTTP status, message and
// metric reason; a reservation is used by register or given back by
// unreserve.
func (h *Hub) reserve(id identity.Identity) (status int, msg, reason string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if id.IsValid() && h.opts.MaxConnsPerIP > 0 {
		if u := h.use[id]; u != nil && len(u.sessions)+u.reserved >= h.opts.MaxConnsPerIP {
			return 429, "too many sessions from your address; close some or try again later", refusedSessions
		}
	}
	if h.opts.MaxSessions > 0 && len(h.sessions)+h.reserved >= h.opts.MaxSessions {
		return 503, "node is full; try again later", refusedNodeFull
	}
	if id.IsValid() {
		h.useLocked(id).reserved++
	}
	h.reserved++
	return 0, "", ""
}

// unreserve gives back a reservation whose connection made no new session.
func (h *Hub) unreserve(id identity.Identity) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.reserved--
	if u := h.use[id]; id.IsValid() && u != nil {
		u.reserved--
		h.tidyLocked(id)
	}
}

// countLocked counts s against id from now until uncountLocked; reserved:
// it uses a reservation of reserve.
func (h *Hub) countLocked(s *session, id identity.Identity, reserved bool) {
	if reserved {
		h.reserved--
	}
	s.quotaID = id
	if !id.IsValid() {
		return
	}
	u := h.useLocked(id)
	if reserved {
		u.reserved--
	}
	u.sessions[s] = struct{}{}
}

func (h *Hub) uncountLocked(s *session) {
	id := s.quotaID
	if u := h.use[id]; id.IsValid() && u != nil {
		delete(u.sessions, s)
		h.tidyLocked(id)
	}
}

// claim is what a connection's ?resume= token names, found before the
// upgrade so that a connection that will not take over a session is
// counted as a new one (a token that is unknown, used or expired does not
// pass --max-sessions).
type claim struct {
	token  string
	local  *session      // a session of this node
	remote ids.SessionID // a session of another node (owner)
	owner  ids.NodeID
}

func (cl claim) resumes() bool { return cl.local != nil || cl.remote != "" }

// claimToken consumes token (a token works once): on this node, or through
// the cluster's directory. The zero claim: no session to resume.
func (h *Hub) claimToken(token string) claim {
	if token == "" {
		return claim{}
	}
	if s := h.takeToken(token); s != nil {
		return claim{token: token, local: s}
	}
	if h.cluster == nil {
		h.countResume("unknown")
		return claim{}
	}
	var cl claim
	err := h.call(func(ctx context.Context) (err error) {
		cl.remote, cl.owner, err = h.cluster.TakeToken(ctx, token)
		return err
	})
	if err != nil {
		if !errors.Is(err, ErrUnknownToken) {
			h.log.Warn("resume: token directory", "err", err)
		}
		h.countResume("unknown")
		return claim{}
	}
	cl.token = token
	return cl
}

// unclaim gives a claimed token back when its connection was refused or
// failed before it could resume.
func (h *Hub) unclaim(cl claim) {
	switch {
	case cl.local != nil:
		s := cl.local
		s.mu.Lock()
		defer s.mu.Unlock()
		if !s.phase.gone() && s.token == cl.token {
			h.registerToken(cl.token, s)
		}
	case cl.remote != "":
		h.putToken(cl.token, cl.remote)
	}
}

// mayQueue reserves, for a join or next of s, a place among the waiting
// sessions of its identity (--max-waiting-per-ip): its other sessions that
// are waiting, plus joins and nexts on their way. False: over the cap. A
// true answer is ended with queued once the engine call returns.
func (h *Hub) mayQueue(s *session) bool {
	if h.opts.MaxWaitingPerIP <= 0 {
		return true
	}
	h.mu.RLock()
	id := s.quotaID
	var others []*session
	if u := h.use[id]; u != nil {
		others = make([]*session, 0, len(u.sessions))
		for o := range u.sessions {
			if o != s {
				others = append(others, o)
			}
		}
	}
	h.mu.RUnlock()
	if !id.IsValid() {
		return true
	}
	// Each session's mu is taken alone, after the registry's lock is
	// released (lock order: a session's mu before h.mu).
	waiting := 0
	for _, o := range others {
		if o.isWaiting() {
			waiting++
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	u := h.useLocked(id)
	if waiting+u.queueing >= h.opts.MaxWaitingPerIP {
		h.tidyLocked(id)
		return false
	}
	u.queueing++
	return true
}

// queued ends a place mayQueue reserved.
func (h *Hub) queued(s *session) {
	if h.opts.MaxWaitingPerIP <= 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	id := s.quotaID
	if u := h.use[id]; id.IsValid() && u != nil {
		u.queueing--
		h.tidyLocked(id)
	}
}

func (s *session) isWaiting() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state == match.Waiting && !s.phase.gone()
}

// requeueLocked spends a token of s's join/next budget (--next-rate,
// --next-burst), which is what stops one session from cycling through the
// queue in seconds. join spends from it too, so leave and join do not get
// round it, and it travels with the session across a resume (Transfer).
// Without a token it answers rate_limited, saying when to retry.
func (h *Hub) requeueLocked(s *session) bool {
	rate, burst := h.opts.NextRate, h.opts.NextBurst
	if rate <= 0 {
		return true
	}
	if s.requeue.take(h.clock.Now(), rate, burst) {
		return true
	}
	wait := time.Duration((1 - s.requeue.tokens) / rate * float64(time.Second))
	h.refused(refusedRequeue)
	s.errorLocked(protocol.CodeRateLimited, "too many new partners in a short time; try again in "+retryAfter(wait)+" s")
	return false
}

// refundRequeue gives back the token of a join or next that was refused
// after requeueLocked (a refused frame changes nothing).
func (h *Hub) refundRequeue(s *session) {
	if h.opts.NextRate <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requeue.tokens++
}

// mayRequeue is the quota check of a join or next (after its state and ban
// checks): the session's join/next budget, then a place among its
// identity's waiting sessions. It answers a refusal itself. requeues is
// false for a next while waiting, which does nothing and meets no quota.
// An accepted one ends with requeued once the engine has answered.
func (h *Hub) mayRequeue(s *session, requeues bool) bool {
	if !requeues {
		return true
	}
	s.mu.Lock()
	ok := h.requeueLocked(s)
	s.mu.Unlock()
	if !ok {
		return false
	}
	if !h.mayQueue(s) {
		h.refundRequeue(s)
		h.refused(refusedWaiting)
		s.mu.Lock()
		defer s.mu.Unlock()
		s.errorLocked(protocol.CodeRateLimited, "too many sessions from your address are waiting for a partner; try again when one is matched")
		return false
	}
	return true
}

// requeued ends what mayRequeue reserved; an engine refusal (err) gives
// the budget back, since a refused frame changes nothing.
func (h *Hub) requeued(s *session, requeues bool, err error) {
	if !requeues {
		return
	}
	h.queued(s)
	if err != nil {
		h.refundRequeue(s)
	}
}

// admit runs the quotas a connection meets before the upgrade, in this
// order: connection attempts per identity (429 with Retry-After), its
// resume token (claimed now), then, unless the token resumes a session,
// sessions per identity (429) and per node (503). A refusal is written to
// w. An admitted connection holds its claim, or a reservation for its new
// session.
func (h *Hub) admit(w http.ResponseWriter, r *http.Request, ip string) (*conn, claim, bool) {
	id := identityOf(ip)
	now := h.clock.Now()
	if wait, ok := h.allowAttempt(id, now); !ok {
		h.refused(refusedConnRate)
		w.Header().Set("Retry-After", retryAfter(wait))
		http.Error(w, "too many connection attempts from your address; retry after "+retryAfter(wait)+" s", http.StatusTooManyRequests)
		return nil, claim{}, false
	}
	cl := h.claimToken(r.URL.Query().Get("resume"))
	if !cl.resumes() {
		if status, msg, reason := h.reserve(id); status != 0 {
			h.refused(reason)
			http.Error(w, msg, status)
			return nil, claim{}, false
		}
	}
	return &conn{ip: ip, id: id, lastPong: now}, cl, true
}

// fillQuotas makes the bursts of rates that are on at least 1: a bucket
// with no room would refuse everything.
func (o *Options) fillQuotas() {
	if o.ConnRate > 0 {
		o.ConnBurst = max(o.ConnBurst, 1)
	}
	if o.NextRate > 0 {
		o.NextBurst = max(o.NextBurst, 1)
	}
}
