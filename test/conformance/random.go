package conformance

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/strangerchat/stranger/test/wsclient"
)

// Parameters of the randomized concurrency test (issue 2: "hundreds of
// goroutine clients doing join / next / leave / drop / resume at random for
// a few seconds; then the invariants hold").
const (
	randomClients  = 200
	randomDuration = 3 * time.Second
	randomTick     = 50 * time.Millisecond // the fake clock advances randomStep per tick
	randomStep     = time.Second
	// randomWait bounds each wait for an answer. It is longer than the
	// other tests' expectTimeout: with the race detector on a loaded 2-core
	// machine, 200 clients' goroutines can wait seconds to run, and this
	// test is about invariants, not latency.
	randomWait = 10 * time.Second
)

// roomLog records every matched frame any client read: room -> session ->
// initiator.
type roomLog struct {
	mu    sync.Mutex
	rooms map[string]map[string]matchSeen
}

type matchSeen struct {
	initiator bool
	mode      string
}

func (l *roomLog) add(session string, f Frame) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.rooms[f.Str("room")]
	if r == nil {
		r = map[string]matchSeen{}
		l.rooms[f.Str("room")] = r
	}
	ini, _ := f.Bool("initiator")
	r[session] = matchSeen{initiator: ini, mode: f.Str("mode")}
}

// rclient is one random client: its current connection and what it saw.
type rclient struct {
	e    *env
	t    *testing.T
	log  *roomLog
	rng  *rand.Rand
	c    *Client
	room string // room of the last matched frame
	// mode is the client's only mode, so that at the end the waiting
	// sessions of each mode can be counted; joined says whether the
	// current session has sent a join (a next without one queues in video).
	mode   string
	joined bool

	steps, drops, resumes, fresh, overloaded int
}

// handle checks and records one frame.
func (r *rclient) handle(f Frame) error {
	switch f.Type() {
	case "matched":
		if f.Str("room") == "" {
			return fmt.Errorf("matched without room: %s", f)
		}
		r.log.add(r.c.Session, f)
		r.room = f.Str("room")
	case "error":
		switch f.Str("code") {
		case "bad_state", "not_chatting", "unknown_type":
		case "overloaded":
			// Allowed under load (the backend too slow or unreachable for a
			// moment); the refused frame changed nothing.
			r.overloaded++
		default:
			return fmt.Errorf("unexpected error frame %s", f)
		}
	case "waiting", "peer_left", "chat", "typing", "signal", "reported":
	default:
		return fmt.Errorf("unexpected frame %s", f)
	}
	return nil
}

// drain handles every frame already received.
func (r *rclient) drain() error {
	for {
		f, err := r.c.TryNext()
		if err != nil {
			return fmt.Errorf("%s: %w", r.c.Session, err)
		}
		if f == nil {
			return nil
		}
		if err := r.handle(f); err != nil {
			return err
		}
	}
}

// barrier sends a frame of unknown type and handles frames up to its
// unknown_type answer: then everything this session caused and everything
// written to it before has been read.
func (r *rclient) barrier() error {
	if err := r.c.TrySend(`{"type":"zz_barrier"}`); err != nil {
		return fmt.Errorf("barrier send: %w", err)
	}
	for {
		f, err := r.c.NextWithin(randomWait)
		if err != nil {
			return fmt.Errorf("%s: barrier: %w", r.c.Session, err)
		}
		if f.Type() == "error" && f.Str("code") == "unknown_type" {
			return nil
		}
		if err := r.handle(f); err != nil {
			return err
		}
	}
}

func connect(e *env, t *testing.T, i int, query string) (*Client, error) {
	e.dialSlots <- struct{}{}
	c, _, err := e.dial(t, i, query, DialOptions{HandshakeTimeout: randomWait})
	<-e.dialSlots
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), randomWait)
	defer cancel()
	w, err := c.ReadWelcome(ctx)
	if err != nil {
		return nil, err
	}
	c.Welcome, c.Session, c.Token = w, w.Str("session"), w.Str("resumeToken")
	return c, nil
}

// dropAndResume drops the connection, waits a little (sometimes past the
// grace period, which the clock ticker advances), and resumes; a resume
// that fails gives a fresh session.
func (r *rclient) dropAndResume(stop <-chan struct{}) error {
	if err := r.drain(); err != nil {
		return err
	}
	r.c.Drop()
	r.drops++
	pause := time.Duration(r.rng.IntN(100)) * time.Millisecond
	if r.rng.IntN(5) == 0 {
		pause = time.Second // ~20 s on the fake clock: past the grace period
	}
	select {
	case <-time.After(pause):
	case <-stop:
	}
	old := r.c
	c, err := connect(r.e, r.t, r.rng.IntN(1<<20), "?"+wsclient.ResumeQuery(old.Token, itoa(old.Last())))
	if err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	if resumed, _ := c.Welcome.Bool("resumed"); resumed {
		if c.Session != old.Session {
			return fmt.Errorf("resume gave session %s for %s", c.Session, old.Session)
		}
		c.SetLast(old.Last())
		r.resumes++
	} else {
		r.fresh++
		r.room, r.joined = "", false
	}
	r.c = c
	return nil
}

var interestPool = []string{"a", "b", "c", "d"}

// step does one random action.
func (r *rclient) step(stop <-chan struct{}) error {
	r.steps++
	if err := r.drain(); err != nil {
		return err
	}
	var interests []string
	for _, in := range interestPool {
		if r.rng.IntN(4) == 0 {
			interests = append(interests, in)
		}
	}
	var err error
	switch n := r.rng.IntN(100); {
	case n < 25 || (n < 40 && !r.joined && r.mode != "video"):
		err = r.c.TrySend(M{"type": "join", "mode": r.mode, "interests": interests})
		r.joined = true
	case n < 40:
		err = r.c.TrySend(M{"type": "next"})
	case n < 52:
		err = r.c.TrySend(M{"type": "leave"})
	case n < 67:
		err = r.c.TrySend(M{"type": "chat", "text": "hi"})
	case n < 72:
		err = r.c.TrySend(M{"type": "typing", "typing": true})
	case n < 82:
		err = r.c.TrySend(M{"type": "signal", "data": M{"candidate": nil}, "room": r.room})
	case n < 95:
		return r.dropAndResume(stop)
	default:
		// The client ends its session; a new one takes its place.
		if err := r.drain(); err != nil {
			return err
		}
		r.c.Close(1000)
		c, err := connect(r.e, r.t, r.rng.IntN(1<<20), "")
		if err != nil {
			return err
		}
		r.c, r.room, r.joined = c, "", false
		r.fresh++
	}
	if err != nil {
		return fmt.Errorf("send: %w", err)
	}
	return nil
}

func randomConcurrency(t *testing.T, newDeployment NewDeployment) {
	e := newEnv(t, newDeployment, Options{MsgRate: 1000, MsgBurst: 100000})
	log := &roomLog{rooms: map[string]map[string]matchSeen{}}
	clients := make([]*rclient, randomClients)
	for i := range clients {
		c, err := connect(e, t, i, "")
		if err != nil {
			t.Fatal(err)
		}
		mode := "video"
		if i%5 == 0 {
			mode = "text"
		}
		clients[i] = &rclient{e: e, t: t, log: log, c: c, mode: mode, rng: rand.New(rand.NewPCG(uint64(i), 42))}
	}

	stop := make(chan struct{})
	var tick sync.WaitGroup
	tick.Go(func() {
		tk := time.NewTicker(randomTick)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
				e.d.Advance(randomStep)
			}
		}
	})
	var wg sync.WaitGroup
	errs := make(chan error, randomClients)
	for _, r := range clients {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				case <-time.After(time.Duration(5+r.rng.IntN(35)) * time.Millisecond):
				}
				if err := r.step(stop); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	time.Sleep(randomDuration) // the length of the random phase, not a wait for a result
	close(stop)
	wg.Wait()
	tick.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}

	// Settle: every session's own actions and everything written to it
	// have been read (two barrier rounds over all clients).
	settle := func() {
		t.Helper()
		for range 2 {
			if err := forAll(clients, (*rclient).barrier); err != nil {
				t.Fatal(err)
			}
		}
	}
	settle()
	// A client whose close was not answered within its wait (a frame
	// before it still waiting for the engine, on a loaded machine) went on
	// with a fresh session; the server saw a drop and keeps the old session
	// for its grace period, still in a chat whose other side a client
	// holds. Let every such grace period run out, as it would.
	e.d.Advance(e.o.ResumeGrace + time.Second)
	settle()
	if err := e.d.CheckInvariants(); err != nil {
		t.Fatalf("after the random phase: %v", err)
	}
	// Everyone joins at once (an idle session gets waiting, the others
	// bad_state), so the final check sees a full queue being matched.
	if err := forAll(clients, func(r *rclient) error {
		return r.c.TrySend(M{"type": "join", "mode": r.mode, "interests": interestPool[:r.rng.IntN(3)]})
	}); err != nil {
		t.Fatal(err)
	}
	settle()
	if err := e.d.CheckInvariants(); err != nil {
		t.Fatalf("after everyone joined: %v", err)
	}
	// Every waiting session now accepts anyone of its mode.
	e.d.Advance(e.o.InterestTimeout + time.Second)
	settle()
	if err := e.d.CheckInvariants(); err != nil {
		t.Fatalf("after the interest timeout: %v", err)
	}

	checkRoomLog(t, log)
	checkFinalStates(t, e, clients)
	var steps, drops, resumes, fresh, overloaded int
	for _, r := range clients {
		steps, drops, resumes, fresh = steps+r.steps, drops+r.drops, resumes+r.resumes, fresh+r.fresh
		overloaded += r.overloaded
	}
	log.mu.Lock()
	t.Logf("%d clients: %d actions, %d rooms, %d drops, %d resumed, %d fresh sessions, %d overloaded",
		len(clients), steps, len(log.rooms), drops, resumes, fresh, overloaded)
	log.mu.Unlock()
}

// forAll runs f for every client, a bounded number at a time (the
// machine may be loaded; 200 handshakes at once can pass expectTimeout).
func forAll(clients []*rclient, f func(*rclient) error) error {
	var wg sync.WaitGroup
	errs := make([]error, len(clients))
	sem := make(chan struct{}, 16)
	for i, r := range clients {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			errs[i] = f(r)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// checkRoomLog: no room was ever announced to more than two sessions, and a
// room seen by both has exactly one initiator and one mode.
func checkRoomLog(t *testing.T, log *roomLog) {
	t.Helper()
	log.mu.Lock()
	defer log.mu.Unlock()
	for room, members := range log.rooms {
		if len(members) > 2 {
			t.Errorf("room %s announced to %d sessions", room, len(members))
		}
		if len(members) == 2 {
			var ini int
			modes := map[string]bool{}
			for _, m := range members {
				if m.initiator {
					ini++
				}
				modes[m.mode] = true
			}
			if ini != 1 || len(modes) != 1 {
				t.Errorf("room %s: %d initiators, modes %v", room, ini, modes)
			}
		}
	}
}

// checkFinalStates takes every session over with a resume (the server's own
// snapshot in welcome) and cross-checks: every chat has exactly two
// sessions, in the room each last saw matched, one initiator, the clients'
// mode; and no mode has two sessions waiting (all accept anyone now, and
// none reported).
func checkFinalStates(t *testing.T, e *env, clients []*rclient) {
	t.Helper()
	type final struct {
		session, state, room, mode string
		initiator                  bool
	}
	finals := make([]final, len(clients))
	err := forAll(clients, func(r *rclient) error {
		old := r.c
		c, err := connect(e, t, e.node(), "?"+wsclient.ResumeQuery(old.Token, itoa(old.Last())))
		if err != nil {
			return err
		}
		if res, _ := c.Welcome.Bool("resumed"); !res {
			return fmt.Errorf("final resume of %s failed: %s", old.Session, c.Welcome)
		}
		f := final{session: c.Session, state: c.Welcome.Str("state")}
		if chat, ok := c.Welcome["chat"].(map[string]any); ok {
			f.room, _ = chat["room"].(string)
			f.mode, _ = chat["mode"].(string)
			f.initiator, _ = chat["initiator"].(bool)
		}
		if f.state == "chatting" && f.room != r.room {
			return fmt.Errorf("%s: chatting in room %q, but the last matched frame said %q", f.session, f.room, r.room)
		}
		finals[slices.Index(clients, r)] = f
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	rooms := map[string][]final{}
	waiting := map[string]int{} // by mode
	for i, f := range finals {
		switch f.state {
		case "chatting":
			rooms[f.room] = append(rooms[f.room], f)
			if f.mode != clients[i].mode {
				t.Errorf("%s: a %s client chats in mode %q", f.session, clients[i].mode, f.mode)
			}
		case "waiting":
			waiting[clients[i].mode]++
		case "idle":
		default:
			t.Errorf("%s: state %q", f.session, f.state)
		}
	}
	for room, fs := range rooms {
		if len(fs) != 2 {
			t.Errorf("room %s has %d sessions chatting in it", room, len(fs))
			continue
		}
		if fs[0].initiator == fs[1].initiator || fs[0].mode != fs[1].mode {
			t.Errorf("room %s: inconsistent partners %+v", room, fs)
		}
	}
	// Every waiting session accepts anyone of its mode now and none was
	// reported: two waiting in one mode would have been matched.
	for mode, n := range waiting {
		if n > 1 {
			t.Errorf("%d sessions left waiting in mode %s after every interest timeout", n, mode)
		}
	}
	t.Logf("final: %d chats, waiting by mode %v", len(rooms), waiting)
}
