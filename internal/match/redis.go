package match

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/strangerchat/stranger/internal/clock"
	"github.com/strangerchat/stranger/internal/cluster"
	"github.com/strangerchat/stranger/internal/identity"
	"github.com/strangerchat/stranger/internal/ids"
	"github.com/strangerchat/stranger/internal/protocol"
)

//go:embed lua/*.lua
var luaFS embed.FS

// scripts are lib.lua followed by each operation's file.
type scripts struct {
	join, next, leave, report, connected, end, timeout, unblock, adopt, sweep, dump *redis.Script
}

func loadScripts() scripts {
	lib, err := luaFS.ReadFile("lua/lib.lua")
	if err != nil {
		panic(err) // embedded at build time: cannot happen
	}
	s := func(name string) *redis.Script {
		src, err := luaFS.ReadFile("lua/" + name + ".lua")
		if err != nil {
			panic(err)
		}
		return redis.NewScript(string(lib) + "\n" + string(src))
	}
	return scripts{
		join: s("join"), next: s("next"), leave: s("leave"), report: s("report"),
		connected: s("connected"), end: s("end"), timeout: s("timeout"), unblock: s("unblock"),
		adopt: s("adopt"), sweep: s("sweep"), dump: s("dump"),
	}
}

// Defaults of RedisConfig.
const (
	DefaultOpTimeout   = 2 * time.Second
	DefaultResumeGrace = 15 * time.Second
)

// RedisConfig configures NewRedis. Zero fields take their defaults (those of
// MemoryConfig where they share a name).
type RedisConfig struct {
	// Node is this process's cluster membership: its channel carries the
	// events for this node's sessions. NewRedis registers a handler on it,
	// so the node must not be started yet.
	Node  *cluster.Node
	Clock clock.Clock
	Log   *slog.Logger

	InterestTimeout time.Duration
	// MaxWaiting caps the queue over all modes and all nodes.
	MaxWaiting    int
	RecentPartner time.Duration
	ReportBlock   time.Duration
	// ResumeGrace: the sessions of a dead node end this long after its
	// death is noticed, unless resumed on another node. Default 15 s.
	ResumeGrace time.Duration
	// NewRoomID names a new chat (default: like MemoryConfig's).
	NewRoomID func() RoomID
	// SequentialRooms names chats "room1", "room2", ... from a counter in
	// Redis, for tests that compare events with the in-memory engine's.
	SequentialRooms bool
	// OpTimeout bounds one operation: the script and the return of its
	// events. Default 2 s.
	OpTimeout time.Duration
	// SweepEvery is how often this node looks for dead nodes and overdue
	// report blocks (see Sweep). Default the node's heartbeat TTL / 3;
	// negative: never (tests call Sweep).
	SweepEvery time.Duration
	// RetryEvery is how long a timer's script waits before it retries after
	// Redis failed. Default 1 s.
	RetryEvery time.Duration
}

// Redis is the engine of a deployment of many nodes sharing one Redis. It
// implements signaling.Engine with the same semantics as Memory (every
// choice listed there holds), with the state and the queue in Redis keys
// changed by Lua scripts (lua/*.lua), one script per operation, so every
// change is atomic across nodes and matching is complete after each.
//
// Events: a script publishes the events it causes on the channel of the
// node of each session concerned (package cluster), so they reach each node
// in the order of the changes; a node's one receiving goroutine calls the
// Notifier. The ordering contract of signaling.Engine holds because the
// script also publishes a marker for the calling operation on the caller's
// channel after its events, and the operation returns once the marker came
// back; if it does not come back within OpTimeout the operation fails with
// ErrOverloaded (its change may have happened).
//
// Timers (interest timeout, end of a report block of two sessions) run on
// the node that caused them; the sweeper (Sweep) ends what a dead node's
// timers cannot, and the blocks of two identities, which have no timer.
//
// Every failure to reach Redis returns an error wrapping ErrOverloaded.
type Redis struct {
	node *cluster.Node
	rdb  *redis.Client
	sc   scripts
	clk  clock.Clock
	n    Notifier
	log  *slog.Logger

	interestTimeout time.Duration
	maxWaiting      int
	recentPartner   time.Duration
	reportBlock     time.Duration
	grace           time.Duration
	newRoomID       func() RoomID
	sequential      bool
	opTimeout       time.Duration
	sweepEvery      time.Duration
	retryEvery      time.Duration

	opSeq   atomic.Uint64
	wmu     sync.Mutex
	waiters map[string]chan struct{}

	tmu    sync.Mutex
	closed bool
	timers map[ids.SessionID]*interestTimer
	blocks map[string]clock.Timer // by pair

	down      atomic.Bool
	stop      chan struct{}
	sweepDone sync.WaitGroup
	trips     atomic.Uint64
}

type interestTimer struct {
	seq string
	t   clock.Timer
}

// NewRedis returns the engine of cfg.Node (not started yet), reporting the
// events of this node's sessions to n. Call Start after starting the node.
func NewRedis(cfg RedisConfig, n Notifier) (*Redis, error) {
	if cfg.Node == nil {
		return nil, errors.New("match: NewRedis needs a cluster.Node")
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if n == nil {
		n = discard{}
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.InterestTimeout <= 0 {
		cfg.InterestTimeout = DefaultInterestTimeout
	}
	if cfg.RecentPartner <= 0 {
		cfg.RecentPartner = DefaultRecentPartner
	}
	if cfg.ReportBlock <= 0 {
		cfg.ReportBlock = DefaultReportBlock
	}
	if cfg.ResumeGrace <= 0 {
		cfg.ResumeGrace = DefaultResumeGrace
	}
	if cfg.NewRoomID == nil {
		cfg.NewRoomID = randomRoomID
	}
	if cfg.OpTimeout <= 0 {
		cfg.OpTimeout = DefaultOpTimeout
	}
	if cfg.SweepEvery == 0 {
		cfg.SweepEvery = cfg.Node.HeartbeatTTL() / 3
	}
	if cfg.RetryEvery <= 0 {
		cfg.RetryEvery = time.Second
	}
	r := &Redis{
		node: cfg.Node, rdb: cfg.Node.Client(), sc: loadScripts(), clk: cfg.Clock, n: n,
		log:             cfg.Log.With("node", string(cfg.Node.ID())),
		interestTimeout: cfg.InterestTimeout,
		maxWaiting:      cfg.MaxWaiting,
		recentPartner:   cfg.RecentPartner,
		reportBlock:     cfg.ReportBlock,
		grace:           cfg.ResumeGrace,
		newRoomID:       cfg.NewRoomID,
		sequential:      cfg.SequentialRooms,
		opTimeout:       cfg.OpTimeout,
		sweepEvery:      cfg.SweepEvery,
		retryEvery:      cfg.RetryEvery,
		waiters:         map[string]chan struct{}{},
		timers:          map[ids.SessionID]*interestTimer{},
		blocks:          map[string]clock.Timer{},
		stop:            make(chan struct{}),
	}
	cfg.Node.Handle(cluster.KindEvents, r.onMessage)
	return r, nil
}

// Start runs the sweeper (when SweepEvery > 0) until Close.
func (r *Redis) Start() {
	if r.sweepEvery <= 0 {
		return
	}
	r.sweepDone.Add(1)
	go func() {
		defer r.sweepDone.Done()
		t := time.NewTicker(r.sweepEvery)
		defer t.Stop()
		for {
			select {
			case <-r.stop:
				return
			case <-t.C:
			}
			if r.node.HealthyFor() < r.node.HeartbeatTTL()+r.sweepEvery {
				// Just back from an outage (or just started): every
				// heartbeat may have expired meanwhile; give the live
				// nodes time to renew theirs before judging them.
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), r.opTimeout)
			if _, _, _, err := r.Sweep(ctx); err != nil {
				r.log.Debug("match: sweep", "err", err)
			}
			cancel()
		}
	}()
}

// Close stops the timers and the sweeper. Afterwards Join and Next fail with
// ErrOverloaded; the other methods keep working. It does not close the node.
func (r *Redis) Close() {
	r.tmu.Lock()
	if r.closed {
		r.tmu.Unlock()
		return
	}
	r.closed = true
	for id, t := range r.timers {
		t.t.Stop()
		delete(r.timers, id)
	}
	for k, t := range r.blocks {
		t.Stop()
		delete(r.blocks, k)
	}
	r.tmu.Unlock()
	close(r.stop)
	r.sweepDone.Wait()
}

func (r *Redis) isClosed() bool {
	r.tmu.Lock()
	defer r.tmu.Unlock()
	return r.closed
}

// Ready reports whether Redis answers (for /readyz).
func (r *Redis) Ready(ctx context.Context) error { return r.node.Ready(ctx) }

// RoundTrips counts the commands this engine sent to Redis (each one round
// trip): for the cost model.
func (r *Redis) RoundTrips() uint64 { return r.trips.Load() }

// overloaded wraps a Redis failure, logging the first of a series.
func (r *Redis) overloaded(what string, err error) error {
	if !r.down.Swap(true) {
		r.log.Error("match: Redis unreachable; answering overloaded until it is back", "op", what, "err", err)
	}
	return fmt.Errorf("%w: redis %s: %w", ErrOverloaded, what, err)
}

func (r *Redis) reachable() {
	if r.down.Load() && r.down.Swap(false) {
		r.log.Info("match: Redis reachable again")
	}
}

// result is a script's answer: {code, value, timer session, timer seq,
// timer delay ns, block pair, block token}.
type result [7]string

// run executes sc with the common arguments and, with mark, waits for the
// events and the marker to come back on this node's channel.
func (r *Redis) run(ctx context.Context, what string, sc *redis.Script, mark bool, args ...any) (result, error) {
	var res result
	ctx, cancel := context.WithTimeout(ctx, r.opTimeout)
	defer cancel()
	var op string
	var done chan struct{}
	if mark && !r.node.Subscribed() {
		// Its events and marker would be published into the void: the
		// operation would happen but look failed. Refuse it untouched.
		return res, r.overloaded(what, errors.New("channel subscription down"))
	}
	if mark {
		op = strconv.FormatUint(r.opSeq.Add(1), 10)
		done = make(chan struct{})
		r.wmu.Lock()
		r.waiters[op] = done
		r.wmu.Unlock()
		defer func() {
			r.wmu.Lock()
			delete(r.waiters, op)
			r.wmu.Unlock()
		}()
	}
	now := r.clk.Now()
	ms := now.UnixMilli()
	rem := now.UnixNano() - ms*1e6
	room1, room2 := "#", "#"
	if !r.sequential {
		room1, room2 = "", ""
		if mayMatch[what] {
			room1, room2 = string(r.newRoomID()), string(r.newRoomID())
		}
	}
	inSeq := ""
	if v, ok := ctx.Value(inSeqKey{}).(int64); ok {
		inSeq = strconv.FormatInt(v, 10)
	}
	argv := make([]any, 0, 13+len(args))
	argv = append(argv, r.node.Prefix(), string(r.node.ID()), op, ms, rem,
		r.interestTimeout.Nanoseconds(), r.recentPartner.Nanoseconds(), r.reportBlock.Milliseconds(),
		r.maxWaiting, room1, room2, r.grace.Milliseconds(), inSeq)
	argv = append(argv, args...)
	r.trips.Add(1)
	vals, err := sc.Run(ctx, r.rdb, nil, argv...).StringSlice()
	if err != nil {
		return res, r.overloaded(what, err)
	}
	copy(res[:], vals)
	if mark {
		select {
		case <-done:
		case <-ctx.Done():
			return res, r.overloaded(what, fmt.Errorf("events not back: %w", ctx.Err()))
		}
	}
	if res[2] != "" && res[4] != "" {
		// The interest timer's delay counts from the time the script ran
		// with; the events were delivered (and the clock may have moved)
		// before the timer is armed, so arm it at that absolute time.
		if d, err := strconv.ParseInt(res[4], 10, 64); err == nil {
			res[4] = strconv.FormatInt(now.Add(time.Duration(d)).UnixNano(), 10)
		}
	}
	r.reachable()
	return res, nil
}

// mayMatch: the operations that can make a match and need room ids (two:
// a block's end may match both sessions of the pair; the sweep derives more
// from the first).
var mayMatch = map[string]bool{"join": true, "next": true, "connected": true, "timeout": true, "unblock": true, "sweep": true}

type inSeqKey struct{}

// WithInSeq returns ctx telling the Redis engine that the operation carries
// out the client frame with seq: the engine stores it with the change, in
// the same script, and Adopt returns it as Snapshot.InSeq (the resume's
// lastSeq after the session's node died). The in-memory engine ignores it.
func WithInSeq(ctx context.Context, seq int64) context.Context {
	return context.WithValue(ctx, inSeqKey{}, seq)
}

func codeErr(code string) error {
	switch code {
	case "OK":
		return nil
	case "BADSTATE":
		return ErrBadState
	case "OVERLOADED":
		return ErrOverloaded
	case "NOTCHATTING":
		return ErrNotChatting
	}
	return fmt.Errorf("match: unexpected script result %q", code)
}

func prefsArgs(id ids.SessionID, p Prefs) []any {
	a := make([]any, 0, 3+len(p.Interests))
	a = append(a, string(id), int(p.Mode), string(p.Identity))
	for _, x := range p.Interests {
		a = append(a, x)
	}
	return a
}

// Join puts an idle session in the queue.
func (r *Redis) Join(ctx context.Context, id ids.SessionID, prefs Prefs) error {
	if err := checkPrefs("join", prefs); err != nil {
		return err
	}
	if r.isClosed() {
		return ErrOverloaded
	}
	res, err := r.run(ctx, "join", r.sc.join, true, prefsArgs(id, prefs)...)
	if err != nil {
		return err
	}
	r.armFrom(res)
	return codeErr(res[0])
}

// Next ends the current chat, if any, and queues the session with prefs.
func (r *Redis) Next(ctx context.Context, id ids.SessionID, prefs Prefs) error {
	if err := checkPrefs("next", prefs); err != nil {
		return err
	}
	if r.isClosed() {
		return ErrOverloaded
	}
	res, err := r.run(ctx, "next", r.sc.next, true, prefsArgs(id, prefs)...)
	if err != nil {
		return err
	}
	r.armFrom(res)
	return codeErr(res[0])
}

// Leave ends the chat or leaves the queue.
func (r *Redis) Leave(ctx context.Context, id ids.SessionID) error {
	res, err := r.run(ctx, "leave", r.sc.leave, true, string(id))
	if err != nil {
		return err
	}
	r.stopTimer(id)
	return codeErr(res[0])
}

// Report reports the current or recent partner and blocks the pair of
// sessions and, if they differ, the pair of their identities. The identity
// block has no timer on this node: the sweeper lifts it (Sweep).
func (r *Redis) Report(ctx context.Context, id ids.SessionID) (Reported, error) {
	token := cluster.RandomID()
	res, err := r.run(ctx, "report", r.sc.report, true, string(id), token)
	if err != nil {
		return Reported{}, err
	}
	if err := codeErr(res[0]); err != nil {
		return Reported{}, err
	}
	r.armBlock(res[5], res[6])
	return decodeReported(res[1])
}

// decodeReported reads report.lua's answer (every field a string).
func decodeReported(raw string) (Reported, error) {
	var w struct {
		P, R, M, C, SA, SN, EA, EN, RI, SI string
	}
	if err := json.Unmarshal([]byte(raw), &w); err != nil {
		return Reported{}, fmt.Errorf("match: report: bad answer: %w", err)
	}
	md, _ := strconv.Atoi(w.M)
	return Reported{Partner: ids.SessionID(w.P), Room: RoomID(w.R), Mode: protocol.Mode(md),
		Common: decodeList(w.C), Started: scriptTime(w.SA, w.SN), Ended: scriptTime(w.EA, w.EN),
		Reporter: identity.Hash(w.RI), Suspect: identity.Hash(w.SI)}, nil
}

// scriptTime is the time a script wrote as whole ms and the ns within the
// ms; zero if ms is empty.
func scriptTime(ms, ns string) time.Time {
	if ms == "" {
		return time.Time{}
	}
	m, _ := strconv.ParseInt(ms, 10, 64)
	n, _ := strconv.ParseInt(ns, 10, 64)
	return time.UnixMilli(m).Add(time.Duration(n))
}

// SetConnected marks the session's connection as dropped or back; the
// caller's node becomes the session's node.
func (r *Redis) SetConnected(ctx context.Context, id ids.SessionID, connected bool) error {
	c := "0"
	if connected {
		c = "1"
	}
	res, err := r.run(ctx, "connected", r.sc.connected, true, string(id), c)
	if err != nil {
		return err
	}
	r.armFrom(res)
	return codeErr(res[0])
}

// End removes the session; its partner, if any, gets EventPeerLeft.
func (r *Redis) End(ctx context.Context, id ids.SessionID, reason Reason) error {
	res, err := r.run(ctx, "end", r.sc.end, true, string(id), string(reason))
	if err != nil {
		return err
	}
	r.stopTimer(id)
	return codeErr(res[0])
}

// State returns the session's state; Idle for unknown sessions.
func (r *Redis) State(ctx context.Context, id ids.SessionID) (State, error) {
	ctx, cancel := context.WithTimeout(ctx, r.opTimeout)
	defer cancel()
	r.trips.Add(1)
	v, err := r.rdb.HGet(ctx, cluster.SessionKey(r.node.Prefix(), id), "st").Int()
	if errors.Is(err, redis.Nil) {
		return Idle, nil
	}
	if err != nil {
		return Idle, r.overloaded("state", err)
	}
	return State(v), nil
}

// Snapshot is the engine's record of a session, for a resume on a node that
// did not hold it (Adopt).
type Snapshot struct {
	State     State
	Connected bool
	Node      ids.NodeID // the node the session belongs to (after the call)
	Room      RoomID
	Partner   ids.SessionID
	Initiator bool
	Common    []string // never nil while chatting
	// Prefs of the last join or next (Mode 0 if none is recorded).
	Prefs     Prefs
	Last      ids.SessionID // last partner, if remembered
	LastEnded time.Time     // when the chat with Last ended
	// InSeq is the highest client seq recorded as processed (WithInSeq,
	// cluster.Router.RelayFrom); 0 if none.
	InSeq int64
}

// Adopt makes this node the node of session id (a resume of a session whose
// node died) and returns its record; ok is false if the engine has none (an
// idle session without a past). Events for the session come to this node
// once Adopt has run, possibly before it returns: the session must be
// registered with the Notifier first (buffering its events until the
// snapshot is applied). Its connection state is unchanged: call
// SetConnected(true) once the session is set up.
func (r *Redis) Adopt(ctx context.Context, id ids.SessionID) (Snapshot, bool, error) {
	return r.adopt(ctx, id, "", false)
}

// HandOver makes node the node of session id and returns its record, once
// every event for the session published before the move has reached this
// node's Notifier. The node that holds a session calls it when another node
// asks for the session (a resume there): it then snapshots the session's
// frames, which are complete, and answers; later events go to the new node.
func (r *Redis) HandOver(ctx context.Context, id ids.SessionID, node ids.NodeID) (Snapshot, bool, error) {
	return r.adopt(ctx, id, node, false)
}

// Snapshot returns the engine's record of session id without changing
// anything, after every event published before it for this node's sessions
// has been delivered (to resynchronise a session's view after messages
// were lost, see cluster.Local.Resubscribed).
func (r *Redis) Snapshot(ctx context.Context, id ids.SessionID) (Snapshot, bool, error) {
	return r.adopt(ctx, id, "", true)
}

func (r *Redis) adopt(ctx context.Context, id ids.SessionID, node ids.NodeID, readOnly bool) (snap Snapshot, ok bool, err error) {
	ro := "0"
	if readOnly {
		ro = "1"
	}
	res, err := r.run(ctx, "adopt", r.sc.adopt, true, string(id), string(node), ro)
	if err != nil {
		return snap, false, err
	}
	if res[1] == "" {
		return snap, false, nil
	}
	var flat []string
	if err := json.Unmarshal([]byte(res[1]), &flat); err != nil {
		return snap, false, fmt.Errorf("match: adopt: bad record: %w", err)
	}
	f := map[string]string{}
	for i := 0; i+1 < len(flat); i += 2 {
		f[flat[i]] = flat[i+1]
	}
	st, _ := strconv.Atoi(f["st"])
	md, _ := strconv.Atoi(f["md"])
	snap = Snapshot{State: State(st), Connected: f["cn"] == "1", Node: ids.NodeID(f["nd"]), Room: RoomID(f["rm"]),
		Partner: ids.SessionID(f["pt"]), Initiator: f["ini"] == "1", Last: ids.SessionID(f["lt"])}
	snap.Prefs.Mode = protocol.Mode(md)
	snap.Prefs.Interests = decodeList(f["in"])
	snap.Prefs.Identity = identity.Hash(f["ih"])
	if snap.State == Chatting {
		snap.Common = decodeList(f["cm"])
	}
	snap.InSeq, _ = strconv.ParseInt(f["iq"], 10, 64)
	snap.LastEnded = scriptTime(f["le"], f["lr"])
	return snap, true, nil
}

// decodeList reads a cjson array ("" and "{}", cjson's empty table, are
// empty).
func decodeList(s string) []string {
	out := []string{}
	if s == "" || s == "{}" {
		return out
	}
	_ = json.Unmarshal([]byte(s), &out)
	if out == nil {
		out = []string{}
	}
	return out
}

// Sweep looks for nodes whose heartbeat expired: their sessions count as
// dropped at once and end (partners: EventPeerLeft "disconnected") after
// ResumeGrace unless another node adopted them; it ends report blocks
// whose timer was on a dead node, and every identity block whose time is
// over (those have no timer). The sweeper calls it every SweepEvery;
// any number of nodes may sweep at once. It returns how many nodes it found
// dead, sessions it ended and blocks it lifted.
func (r *Redis) Sweep(ctx context.Context) (dead, ended, unblocked int, err error) {
	res, err := r.run(ctx, "sweep", r.sc.sweep, false)
	if err != nil {
		return 0, 0, 0, err
	}
	_, err = fmt.Sscan(res[1], &dead, &ended, &unblocked)
	return dead, ended, unblocked, err
}

// Stats returns the deployment-wide counters (all nodes); zero if Redis is
// unreachable.
func (r *Redis) Stats() Stats {
	ctx, cancel := context.WithTimeout(context.Background(), r.opTimeout)
	defer cancel()
	r.trips.Add(1)
	var all *redis.MapStringStringCmd
	var blocks, iblocks *redis.IntCmd
	_, err := r.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		all = p.HGetAll(ctx, r.node.Prefix()+"stats")
		blocks = p.ZCard(ctx, r.node.Prefix()+"blocks")
		iblocks = p.ZCard(ctx, r.node.Prefix()+"iblocks")
		return nil
	})
	if err != nil {
		return Stats{}
	}
	m := all.Val()
	num := func(k string) int { v, _ := strconv.Atoi(m[k]); return v }
	st := Stats{Chats: num("chats"), Matches: uint64(num("matches")), Sessions: num("sessions"),
		Blocks: int(blocks.Val() + iblocks.Val())}
	for _, mode := range protocol.Modes {
		st.Waiting[mode] = num("w" + strconv.Itoa(int(mode)))
	}
	return st
}

// Interest timers.

// armFrom arms the interest timer a script asked for.
func (r *Redis) armFrom(res result) {
	id, seq := ids.SessionID(res[2]), res[3]
	if id == "" {
		return
	}
	at, _ := strconv.ParseInt(res[4], 10, 64) // absolute, see run
	r.tmu.Lock()
	defer r.tmu.Unlock()
	if r.closed {
		return
	}
	if t := r.timers[id]; t != nil {
		if t.seq == seq {
			return // already armed for this queue stay
		}
		t.t.Stop()
	}
	it := &interestTimer{seq: seq}
	it.t = clock.AfterFuncAt(r.clk, time.Unix(0, at), func() { r.interestTimeoutPassed(id, it) })
	r.timers[id] = it
}

func (r *Redis) stopTimer(id ids.SessionID) {
	r.tmu.Lock()
	defer r.tmu.Unlock()
	if t := r.timers[id]; t != nil {
		t.t.Stop()
		delete(r.timers, id)
	}
}

func (r *Redis) interestTimeoutPassed(id ids.SessionID, it *interestTimer) {
	r.tmu.Lock()
	if r.closed || r.timers[id] != it {
		r.tmu.Unlock()
		return
	}
	delete(r.timers, id)
	r.tmu.Unlock()
	_, err := r.run(context.Background(), "timeout", r.sc.timeout, true, string(id), it.seq)
	if err != nil {
		r.retry(func() { r.interestTimeoutPassedRetry(id, it) })
	}
}

func (r *Redis) interestTimeoutPassedRetry(id ids.SessionID, it *interestTimer) {
	r.tmu.Lock()
	if r.closed || r.timers[id] != nil {
		r.tmu.Unlock()
		return // closed, or a new queue stay has its own timer
	}
	r.timers[id] = it
	r.tmu.Unlock()
	r.interestTimeoutPassed(id, it)
}

// retry runs f after RetryEvery (Redis was unreachable).
func (r *Redis) retry(f func()) {
	r.tmu.Lock()
	defer r.tmu.Unlock()
	if r.closed {
		return
	}
	r.clk.AfterFunc(r.retryEvery, f)
}

// armBlock arms the end of a report block; a renewed block replaces the old
// timer (the old token no longer matches in Redis anyway).
func (r *Redis) armBlock(pair, token string) {
	if pair == "" {
		return
	}
	r.tmu.Lock()
	defer r.tmu.Unlock()
	if r.closed {
		return
	}
	if t := r.blocks[pair]; t != nil {
		t.Stop()
	}
	var t clock.Timer
	t = r.clk.AfterFunc(r.reportBlock, func() { r.blockExpired(pair, token, t) })
	r.blocks[pair] = t
}

func (r *Redis) blockExpired(pair, token string, t clock.Timer) {
	r.tmu.Lock()
	if r.closed {
		r.tmu.Unlock()
		return
	}
	if r.blocks[pair] == t {
		delete(r.blocks, pair)
	}
	r.tmu.Unlock()
	if _, err := r.run(context.Background(), "unblock", r.sc.unblock, true, pair, token); err != nil {
		// The sweeper lifts it too, once Redis is back.
		r.retry(func() { r.blockExpired(pair, token, nil) })
	}
}

// Events.

type wireMsg struct {
	M string   `json:"m"`
	E []wireEv `json:"e"`
}

type wireEv struct {
	S ids.SessionID `json:"s"`
	K int           `json:"k"`
	R RoomID        `json:"r"`
	P ids.SessionID `json:"p"`
	I int           `json:"i"`
	M int           `json:"m"`
	C string        `json:"c"`
	X string        `json:"x"`
	W string        `json:"w"`
}

// onMessage runs on the node's receiving goroutine: the events of one
// script for this node's sessions, then maybe the marker of an operation of
// this node.
func (r *Redis) onMessage(b []byte) {
	var msg wireMsg
	if err := json.Unmarshal(b, &msg); err != nil {
		// cjson writes an empty table as {}: a message with no events.
		r.log.Warn("match: bad event message", "err", err)
		return
	}
	for _, w := range msg.E {
		ev := Event{Kind: EventKind(w.K), Room: w.R, Partner: w.P, Initiator: w.I == 1,
			Mode: protocol.Mode(w.M), Reason: Reason(w.X)}
		if ev.Kind == EventMatched {
			ev.Common = decodeList(w.C)
			ns, _ := strconv.ParseInt(w.W, 10, 64)
			ev.Waited = time.Duration(ns)
			r.stopTimer(w.S)
		}
		r.n.Notify(w.S, ev)
	}
	if msg.M != "" {
		r.wmu.Lock()
		done := r.waiters[msg.M]
		delete(r.waiters, msg.M)
		r.wmu.Unlock()
		if done != nil {
			close(done)
		}
	}
}
