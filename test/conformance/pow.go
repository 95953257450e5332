package conformance

import (
	"context"
	"testing"

	"github.com/strangerchat/stranger/internal/pow"
)

// powCases: protocol 1.1 "Proof of work". They run only against a
// deployment that asks for it (the suite's second run, CONFORMANCE_POW in
// test/conformance_memory_test.go); the other rows pass there unchanged
// because the suite's clients solve every challenge (test/wsclient/pow.go).
func powCases() []testCase {
	return []testCase{
		{name: "pow/first_join_or_next_needs_a_solution", run: testPowRequired},
		{name: "pow/a_solution_works_once", run: testPowOnce},
		{name: "pow/later_frames_and_resumes_need_none", run: testPowOnlyFirst},
		{name: "pow/resume_before_first_join_still_owes", run: testPowResumeOwes},
	}
}

// manual connects a client that does not solve challenges by itself; the
// test is skipped when the deployment asks for no proof of work.
func (e *env) manualPowClient(t *testing.T) *Client {
	t.Helper()
	c := e.connectAt(t, e.node(), "", DialOptions{ManualPow: true})
	if c.Welcome["pow"] == nil {
		t.Skip("the deployment asks for no proof of work")
	}
	return c
}

// solvePow solves the challenge in f's pow field, failing the test unless
// it is a whole ALTCHA challenge object.
func solvePow(t *testing.T, f Frame) string {
	t.Helper()
	var ch struct {
		Pow *pow.Challenge `json:"pow"`
	}
	if err := f.Decode(&ch); err != nil || ch.Pow == nil || ch.Pow.Algorithm != "SHA-256" ||
		ch.Pow.Challenge == "" || ch.Pow.MaxNumber < 1 || ch.Pow.Salt == "" || ch.Pow.Signature == "" {
		t.Fatalf("no ALTCHA challenge in %s", f)
	}
	p, _, err := pow.Solve(context.Background(), *ch.Pow)
	if err != nil {
		t.Fatalf("solving %s: %v", f, err)
	}
	return p
}

// Without a solution, or with a wrong one, join and next get pow_required
// with a fresh challenge and change nothing; the fresh challenge's solution
// is accepted.
func testPowRequired(t *testing.T, e *env) {
	a := e.manualPowClient(t)
	a.Send(t, M{"type": "join", "mode": "text"})
	e1 := a.ExpectError(t, "pow_required")
	a.Send(t, M{"type": "next", "pow": "bm90IGEgc29sdXRpb24="})
	e2 := a.ExpectError(t, "pow_required")
	if e1.String() == e2.String() {
		t.Fatal("the same challenge twice")
	}
	a.Send(t, M{"type": "chat", "text": "x"})
	a.ExpectError(t, "not_chatting") // still idle
	a.Send(t, M{"type": "join", "mode": "text", "pow": solvePow(t, e2)})
	a.Expect(t, "waiting")
}

// A solution spent by one session is refused to another.
func testPowOnce(t *testing.T, e *env) {
	a := e.manualPowClient(t)
	sol := solvePow(t, a.Welcome)
	a.Send(t, M{"type": "join", "mode": "text", "pow": sol})
	a.Expect(t, "waiting")
	b := e.manualPowClient(t)
	b.Send(t, M{"type": "join", "mode": "text", "pow": sol})
	b.ExpectError(t, "pow_required")
}

// After one accepted solution nothing more is asked, also after a resume.
func testPowOnlyFirst(t *testing.T, e *env) {
	a := e.manualPowClient(t)
	a.Send(t, M{"type": "join", "mode": "text", "pow": solvePow(t, a.Welcome)})
	a.Expect(t, "waiting")
	a.Send(t, M{"type": "leave"})
	a.Send(t, M{"type": "next"})
	a.Expect(t, "waiting")
	n := e.connectAt(t, e.node(), "?resume="+a.Token+"&last="+itoa(a.Last()), DialOptions{ManualPow: true})
	if r, _ := n.Welcome.Bool("resumed"); !r || n.Welcome["pow"] != nil {
		t.Fatalf("resumed welcome %s, want resumed without pow", n.Welcome)
	}
	n.SetLast(a.Last())
	n.Send(t, M{"type": "leave", "seq": 10})
	n.Send(t, M{"type": "next", "seq": 11})
	n.Expect(t, "waiting")
}

// A session resumed (on the next node, so over several nodes it moves)
// before its first join still owes the proof of work: the resumed welcome
// brings a challenge, a join without a solution gets pow_required, and one
// with the solution of that challenge is accepted.
func testPowResumeOwes(t *testing.T, e *env) {
	a := e.manualPowClient(t)
	n := e.connectAt(t, e.node(), "?resume="+a.Token+"&last=0", DialOptions{ManualPow: true})
	if r, _ := n.Welcome.Bool("resumed"); !r || n.Welcome["pow"] == nil {
		t.Fatalf("resumed welcome %s, want resumed with a fresh pow", n.Welcome)
	}
	n.Send(t, M{"type": "join", "mode": "text", "seq": 1})
	n.ExpectError(t, "pow_required")
	n.Send(t, M{"type": "join", "mode": "text", "seq": 2, "pow": solvePow(t, n.Welcome)})
	n.Expect(t, "waiting")
}
