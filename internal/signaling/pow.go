package signaling

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strangerchat/stranger/internal/pow"
	"github.com/strangerchat/stranger/internal/protocol"
)

// ProofOfWork is what the hub needs of a proof-of-work verifier
// (*pow.Verifier): challenges for welcome and pow_required, and the check of
// a solution, which also spends it on every node (docs/protocol.md, 1.1
// "Proof of work").
type ProofOfWork interface {
	Challenge(now time.Time) (pow.Challenge, error)
	Verify(ctx context.Context, payload string, now time.Time) error
}

// powState is whether a session still owes its proof of work. The zero
// value owes nothing: proof of work is off, the session paid, or it was
// rebuilt on this node after its own node died (it had been admitted there).
type powState uint8

const (
	powSettled powState = iota
	powOwed             // a new session while proof of work is on, until its first good solution
)

// powMetrics count proofs of work by outcome.
type powMetrics struct {
	solved  prometheus.Counter
	refused map[string]prometheus.Counter // by pow.Reason
}

func newPowMetrics(reg prometheus.Registerer) *powMetrics {
	m := &powMetrics{
		solved: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "stranger_pow_solved_total", Help: "Proof-of-work solutions accepted (one per session at most)."}),
		refused: map[string]prometheus.Counter{},
	}
	refused := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "stranger_pow_refused_total",
		Help: "Proof-of-work solutions refused, by reason (missing, malformed, wrong, expired, used; error: the replay store failed)."}, []string{"reason"})
	for _, r := range pow.Reasons {
		m.refused[r] = refused.WithLabelValues(r)
	}
	reg.MustRegister(m.solved, refused)
	return m
}

// powChallengeLocked is welcome.pow for s: a fresh challenge while s owes
// its proof of work, else nil.
func (h *Hub) powChallengeLocked(s *session) *protocol.PowChallenge {
	if h.opts.Pow == nil || s.pow != powOwed {
		return nil
	}
	c, err := h.opts.Pow.Challenge(h.clock.Now())
	if err != nil { // crypto/rand failed: the join gets pow_required and a new try
		h.log.Error("proof of work: challenge", "err", err)
		return nil
	}
	pc := protocol.PowChallenge(c)
	return &pc
}

// powPaid is the proof-of-work check of join and next (step 4, right before
// banned). Only a session that still owes it is checked; such a session has
// never joined, so it is idle and join's bad_state cannot apply to it: the
// check may run before the handler's own state check without changing the
// order of protocol.md. The verifier is called with no lock held (it may
// ask Redis).
func (h *Hub) powPaid(s *session, f *protocol.Frame) bool {
	if h.opts.Pow == nil || !s.owesPow() {
		return true
	}
	err := h.call(func(ctx context.Context) error { return h.opts.Pow.Verify(ctx, f.Pow, h.clock.Now()) })
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		s.pow = powSettled
		h.metrics.pow.solved.Inc()
		return true
	}
	reason := pow.Reason(err)
	h.metrics.pow.refused[reason].Inc()
	if reason == "error" { // the replay store, not the client
		h.log.Warn("proof of work: verify", "session", string(s.id), "err", err)
		s.errorLocked(protocol.CodeOverloaded, "the server cannot check proofs of work now; try again shortly")
		return false
	}
	c := h.powChallengeLocked(s)
	if c == nil {
		s.errorLocked(protocol.CodeOverloaded, "the server cannot make a challenge now; try again shortly")
		return false
	}
	if e := h.metrics.errors[protocol.CodePowRequired]; e != nil {
		e.Inc()
	}
	msg := "solve the proof-of-work challenge in pow and send the solution with join or next (" + reason + ")"
	s.emitLocked(func(dst []byte, seq int64) []byte {
		return protocol.AppendPowRequired(dst, seq, msg, *c)
	}, 512)
	return false
}

func (s *session) owesPow() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pow == powOwed
}
