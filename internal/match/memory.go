package match

import (
	"cmp"
	"container/list"
	"context"
	"crypto/rand"
	"encoding/base32"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/strangerchat/stranger/internal/clock"
	"github.com/strangerchat/stranger/internal/identity"
	"github.com/strangerchat/stranger/internal/ids"
	"github.com/strangerchat/stranger/internal/protocol"
)

// Defaults of MemoryConfig.
const (
	DefaultInterestTimeout = 5 * time.Second
	DefaultRecentPartner   = 60 * time.Second
	DefaultReportBlock     = 24 * time.Hour
	DefaultMaxBlocks       = 100_000
)

// MemoryConfig configures NewMemory. Zero fields take their defaults.
type MemoryConfig struct {
	Clock clock.Clock // default clock.Real (tests pass a clock.Fake)
	// InterestTimeout is how long a session with interests waits for a partner
	// sharing one before it accepts anyone of its mode (rule 3). Default 5 s.
	InterestTimeout time.Duration
	// MaxWaiting caps the queue over all modes; a Join or Next that would go
	// beyond it fails with ErrOverloaded and changes nothing. 0 = unlimited.
	MaxWaiting int
	// RecentPartner is how long after a chat ended its partner can still be
	// reported. Default 60 s.
	RecentPartner time.Duration
	// ReportBlock is how long a reported pair is never matched again.
	// Default 24 h.
	ReportBlock time.Duration
	// MaxBlocks caps the report blocks held, of pairs of sessions and of
	// pairs of identities together; when it is reached the oldest block is
	// lifted early to make room. It bounds the memory a flood of reports
	// can take. Default 100 000 (DefaultMaxBlocks).
	MaxBlocks int
	// NewRoomID names a new chat. Default: "r_" and 16 random base32
	// characters from crypto/rand.
	NewRoomID func() RoomID
}

// Memory is the single-node engine: every session's chat state, the waiting
// queue and the matching rules of protocol.md, in memory, behind one mutex.
// It implements signaling.Engine. Events go to the Notifier while that
// mutex is held, in the order the changes happen, so the Notifier must not
// call back into the engine.
//
// Choices the protocol leaves open:
//   - The session that has waited longer (enqueued first) is the initiator,
//     its EventMatched is sent first, and Common lists the shared interests
//     in its order.
//   - A Join or Next is refused with ErrOverloaded when MaxWaiting sessions
//     are waiting already, even if it would have matched at once.
//   - After Close, Join and Next fail with ErrOverloaded; the other methods
//     keep working so sessions can still be torn down.
//   - SetConnected(false) on a session the engine does not know (idle, never
//     joined, or forgotten) records the drop, so that a join reaching the
//     engine before the reconnect is not matched; End forgets it.
//   - A session's record lives until End once it has had a chat (its last
//     partner is remembered for rule 5 and report); a session that joined
//     and left without a chat is forgotten at once.
//
// Why the queue is cheap: matching runs after every change for the one
// session that changed, so between calls no two waiting, connected sessions
// accept each other. Every index below therefore holds few connected entries
// that could match a newcomer, and a match is found by looking at the heads
// of a handful of FIFO lists: the lists of the newcomer's interests and, if
// it accepts anyone, the lists of sessions that accept anyone.
type Memory struct {
	clk             clock.Clock
	n               Notifier
	interestTimeout time.Duration
	maxWaiting      int
	recentPartner   time.Duration
	reportBlock     time.Duration
	maxBlocks       int
	newRoomID       func() RoomID

	mu       sync.Mutex
	closed   bool
	sessions map[ids.SessionID]*session
	queues   [len(protocol.Modes) + 1]modeQueue // indexed by protocol.Mode
	waiting  int                                // over all modes
	chats    int
	matches  uint64
	seq      uint64 // enqueue counter: a lower seq has waited longer

	// blocks holds the reported pairs, of sessions and of identities, until
	// they expire, at most maxBlocks of them. Every block lasts reportBlock
	// from its report, so the order of expiry is the order of creation:
	// blockFIFO (oldest first) needs one timer, for its head, instead of
	// one per block. When a block ends — expired, or dropped to make room —
	// matching is retried for the sessions it kept apart: two waiting
	// sessions may accept each other the moment it ends.
	blocks     map[blockKey]*list.Element // values *blockEntry, in blockFIFO
	blockFIFO  list.List
	blockTimer clock.Timer // fires at the head's expiry; nil if none
	blockAt    time.Time   // when blockTimer fires
	blockGen   uint64      // tells a stale blockTimer's call from the current one

	// byIdentity holds the connected waiting sessions of each identity (the
	// ones in the match indexes), to retry matching when a block between
	// two identities ends.
	byIdentity map[identity.Hash]map[*session]struct{}

	freeLists []*qlist // emptied interest lists kept for reuse
}

// session is one session's record. It exists only while the session has
// something to remember: a queue place, a chat, a last partner or a dropped
// connection. A session that never joined costs nothing.
type session struct {
	id        ids.SessionID
	identity  identity.Hash // of its last Join or Next ("" unknown)
	state     State
	connected bool
	gone      bool // ended; a pending timer must not touch it

	// Queue place (state Waiting).
	mode       protocol.Mode
	interests  []string
	seq        uint64
	enqueuedAt time.Time
	timedOut   bool        // the interest timeout passed: accepts anyone
	timer      clock.Timer // pending interest timeout
	// nodes[i] links the session into the list of interests[i]; the last
	// node links it into an "accepts anyone" list. A node is in a list only
	// while the session waits connected.
	nodes []qnode

	// Chat (state Chatting).
	partner *session
	room    RoomID

	// Last partner (rule 5 and report), set when a chat ends and forgotten
	// at the next match.
	last      ids.SessionID
	lastEnded time.Time
	// chat describes the current chat, then the last one, until the next
	// match: what a report returns.
	chat chatRecord
}

// chatRecord is what the engine keeps of a chat for a report: captured at
// the match on each side, so the reporter's record answers even after the
// partner's has gone.
type chatRecord struct {
	room    RoomID
	mode    protocol.Mode
	common  []string // shared by both records: never modified
	started time.Time
	self    identity.Hash // this side's identity at the match
	partner identity.Hash // the other side's identity at the match
}

func (c *chatRecord) reported(partner ids.SessionID, ended time.Time) Reported {
	return Reported{Partner: partner, Room: c.room, Mode: c.mode, Common: slices.Clone(c.common),
		Started: c.started, Ended: ended, Reporter: c.self, Suspect: c.partner}
}

func (s *session) open() bool { return len(s.interests) == 0 || s.timedOut }

// modeQueue indexes the connected waiting sessions of one mode. Every list
// is ordered by seq, oldest first.
type modeQueue struct {
	waiting    int   // all waiting sessions of the mode, connected or not
	plain      qlist // sessions without interests
	expired    qlist // sessions with interests whose timeout passed
	byInterest map[string]*qlist
}

type qlist struct {
	head, tail *qnode
	key        string // the interest, for interest lists
}

type qnode struct {
	prev, next *qnode
	s          *session
	list       *qlist
}

// insert puts n into l in seq order. New entries are the youngest almost
// always, so the walk from the tail stops at once; a reconnecting or timed
// out session walks past the few younger connected entries.
func (l *qlist) insert(n *qnode) {
	p := l.tail
	for p != nil && p.s.seq > n.s.seq {
		p = p.prev
	}
	n.list = l
	n.prev = p
	if p == nil {
		n.next = l.head
		l.head = n
	} else {
		n.next = p.next
		p.next = n
	}
	if n.next == nil {
		l.tail = n
	} else {
		n.next.prev = n
	}
}

func (l *qlist) remove(n *qnode) {
	if n.prev == nil {
		l.head = n.next
	} else {
		n.prev.next = n.next
	}
	if n.next == nil {
		l.tail = n.prev
	} else {
		n.next.prev = n.prev
	}
	n.prev, n.next, n.list = nil, nil, nil
}

// blockKind says what a report block keeps apart.
type blockKind uint8

const (
	// sessionBlock: two sessions (protocol rule 5).
	sessionBlock blockKind = iota + 1
	// identityBlock: two identities, so that a reported person who comes
	// back with a new session still never meets the reporter.
	identityBlock
)

// blockKey names a block: its kind and the pair, a < b.
type blockKey struct {
	kind blockKind
	a, b string
}

func makeBlockKey(kind blockKind, x, y string) blockKey {
	if x > y {
		x, y = y, x
	}
	return blockKey{kind, x, y}
}

// identityPair is the identity block between x and y, if one can exist:
// both known and different. The same identity on both sides (two tabs of
// one household behind one address, or every test client on 127.0.0.1)
// gets no identity block: it would keep that identity from every session
// of its own, which is not the pair that was reported; the session block
// still holds.
func identityPair(x, y identity.Hash) (blockKey, bool) {
	if x == "" || y == "" || x == y {
		return blockKey{}, false
	}
	return makeBlockKey(identityBlock, string(x), string(y)), true
}

type blockEntry struct {
	key   blockKey
	until time.Time
}

// Stats is a snapshot of an engine's counters.
type Stats struct {
	Waiting  [len(protocol.Modes) + 1]int // indexed by protocol.Mode; 0 unused
	Chats    int                          // chats in progress
	Matches  uint64                       // matches made since start
	Sessions int                          // session records held
	Blocks   int                          // report blocks held (pairs of sessions and of identities)
}

// NewMemory returns an engine that reports events to n.
func NewMemory(cfg MemoryConfig, n Notifier) *Memory {
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if n == nil {
		n = discard{}
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
	if cfg.MaxBlocks <= 0 {
		cfg.MaxBlocks = DefaultMaxBlocks
	}
	if cfg.NewRoomID == nil {
		cfg.NewRoomID = randomRoomID
	}
	m := &Memory{
		clk:             cfg.Clock,
		n:               n,
		interestTimeout: cfg.InterestTimeout,
		maxWaiting:      cfg.MaxWaiting,
		recentPartner:   cfg.RecentPartner,
		reportBlock:     cfg.ReportBlock,
		maxBlocks:       cfg.MaxBlocks,
		newRoomID:       cfg.NewRoomID,
		sessions:        make(map[ids.SessionID]*session),
		blocks:          make(map[blockKey]*list.Element),
		byIdentity:      make(map[identity.Hash]map[*session]struct{}),
	}
	for i := range m.queues {
		m.queues[i].byInterest = make(map[string]*qlist)
	}
	return m
}

type discard struct{}

func (discard) Notify(ids.SessionID, Event) {}

var roomEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// randomRoomID returns "r_" and 16 base32 characters (80 random bits).
func randomRoomID() RoomID {
	var raw [10]byte
	_, _ = rand.Read(raw[:]) // crypto/rand.Read never returns an error (Go 1.24+)
	var out [18]byte
	out[0], out[1] = 'r', '_'
	roomEncoding.Encode(out[2:], raw[:])
	return RoomID(out[:])
}

// Stats returns the current counters.
func (m *Memory) Stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := Stats{Chats: m.chats, Matches: m.matches, Sessions: len(m.sessions), Blocks: len(m.blocks)}
	for i := range m.queues {
		st.Waiting[i] = m.queues[i].waiting
	}
	return st
}

// Close stops the pending interest timers. Afterwards Join and Next fail with
// ErrOverloaded.
func (m *Memory) Close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	for _, s := range m.sessions {
		if s.timer != nil {
			s.timer.Stop()
			s.timer = nil
		}
	}
	if m.blockTimer != nil {
		m.blockTimer.Stop()
		m.blockTimer = nil
	}
}

func validMode(mode protocol.Mode) bool {
	return mode > 0 && int(mode) < len(protocol.Modes)+1
}

// Join puts an idle session in the queue.
func (m *Memory) Join(_ context.Context, id ids.SessionID, prefs Prefs) error {
	if err := checkPrefs("join", prefs); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.sessions[id]
	if s != nil && s.state != Idle {
		return ErrBadState
	}
	if err := m.admit(); err != nil {
		return err
	}
	if s == nil {
		s = m.newSession(id)
	}
	m.enqueue(s, prefs, m.clk.Now())
	return nil
}

// Next ends the current chat, if any, and queues the session with prefs.
// While waiting it does nothing.
func (m *Memory) Next(_ context.Context, id ids.SessionID, prefs Prefs) error {
	if err := checkPrefs("next", prefs); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.sessions[id]
	if s != nil && s.state == Waiting {
		return nil
	}
	// Checked before the chat ends: a refused next changes nothing.
	if err := m.admit(); err != nil {
		return err
	}
	now := m.clk.Now()
	if s == nil {
		s = m.newSession(id)
	} else if s.state == Chatting {
		m.endChat(s, ReasonNext, now)
	}
	m.enqueue(s, prefs, now)
	return nil
}

// Leave ends the chat or leaves the queue; the session becomes idle.
func (m *Memory) Leave(_ context.Context, id ids.SessionID) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.sessions[id]
	if s == nil {
		return nil
	}
	switch s.state {
	case Chatting:
		m.endChat(s, ReasonLeft, m.clk.Now())
	case Waiting:
		m.dequeue(s)
		s.state = Idle
		m.forgetIfEmpty(s)
	}
	return nil
}

// Report reports the current partner, or the last one if that chat ended
// within RecentPartner, and blocks the pair of sessions, and the pair of
// their identities, for ReportBlock.
func (m *Memory) Report(_ context.Context, id ids.SessionID) (Reported, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.sessions[id]
	if s == nil {
		return Reported{}, ErrNotChatting
	}
	now := m.clk.Now()
	var r Reported
	switch {
	case s.state == Chatting:
		r = s.chat.reported(s.partner.id, now)
		m.endChat(s, ReasonReported, now)
	case s.last != "" && now.Sub(s.lastEnded) <= m.recentPartner:
		r = s.chat.reported(s.last, s.lastEnded)
	default:
		return Reported{}, ErrNotChatting
	}
	m.block(makeBlockKey(sessionBlock, string(s.id), string(r.Partner)), now)
	if k, ok := identityPair(r.Reporter, r.Suspect); ok {
		m.block(k, now)
	}
	return r, nil
}

// SetConnected marks the session's connection as dropped or back. A waiting
// session leaves the match indexes while dropped, keeping its seq (its place)
// and its interest clock, and is matched at once when it comes back.
func (m *Memory) SetConnected(_ context.Context, id ids.SessionID, connected bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.sessions[id]
	if s == nil {
		if connected {
			return nil
		}
		// Remember the drop even of an idle session: should a join reach
		// the engine before the reconnect does, it must not be matched.
		s = m.newSession(id)
	}
	if s.connected == connected {
		return nil
	}
	s.connected = connected
	if s.state != Waiting {
		m.forgetIfEmpty(s)
		return nil
	}
	if connected {
		m.link(s)
		m.tryMatch(s, m.clk.Now())
	} else {
		m.unlink(s)
	}
	return nil
}

// End removes the session; its partner, if any, gets EventPeerLeft with
// reason.
func (m *Memory) End(_ context.Context, id ids.SessionID, reason Reason) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.sessions[id]
	if s == nil {
		return nil
	}
	switch s.state {
	case Chatting:
		m.endChat(s, reason, m.clk.Now())
	case Waiting:
		m.dequeue(s)
	}
	s.state = Idle
	s.gone = true
	delete(m.sessions, id)
	return nil
}

// State returns the session's state; Idle for unknown sessions.
func (m *Memory) State(_ context.Context, id ids.SessionID) (State, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s := m.sessions[id]; s != nil {
		return s.state, nil
	}
	return Idle, nil
}

func (m *Memory) admit() error {
	if m.closed || (m.maxWaiting > 0 && m.waiting >= m.maxWaiting) {
		return ErrOverloaded
	}
	return nil
}

func (m *Memory) newSession(id ids.SessionID) *session {
	s := &session{id: id, connected: true}
	m.sessions[id] = s
	return s
}

// forgetIfEmpty drops the record of an idle session that has nothing left to
// remember, so it costs no more than a session that never joined.
func (m *Memory) forgetIfEmpty(s *session) {
	if s.state == Idle && s.connected && s.last == "" {
		delete(m.sessions, s.id)
		s.gone = true
	}
}

// enqueue puts s (idle) in the queue: EventWaiting, then a match if one is
// possible, else the interest timer.
func (m *Memory) enqueue(s *session, prefs Prefs, now time.Time) {
	m.seq++
	s.state = Waiting
	s.identity = prefs.Identity
	s.mode = prefs.Mode
	s.interests = append(s.interests[:0], prefs.Interests...)
	s.seq = m.seq
	s.enqueuedAt = now
	s.timedOut = false
	if need := len(s.interests) + 1; cap(s.nodes) < need {
		s.nodes = make([]qnode, need)
	} else {
		s.nodes = s.nodes[:need]
	}
	for i := range s.nodes {
		s.nodes[i].s = s
	}
	m.queues[s.mode].waiting++
	m.waiting++
	m.n.Notify(s.id, Event{Kind: EventWaiting})
	if s.connected {
		m.link(s)
		m.tryMatch(s, now)
	}
	if s.state == Waiting && len(s.interests) > 0 && !m.closed {
		// At a deadline from the join's own time, not from whenever this
		// line runs: the waiting event above may already have reached the
		// client, and a test's fake clock moved on, before it does (a timer
		// armed later fired late: TestConformanceMemory's rule3 row failed
		// under load).
		seq := s.seq
		s.timer = clock.AfterFuncAt(m.clk, now.Add(m.interestTimeout), func() { m.interestTimeoutPassed(s, seq) })
	}
}

// dequeue takes s out of the queue; the caller sets its new state.
func (m *Memory) dequeue(s *session) {
	m.unlink(s)
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	m.queues[s.mode].waiting--
	m.waiting--
}

func (m *Memory) interestTimeoutPassed(s *session, seq uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	// A real clock's timer may fire after Stop was called: check that this
	// is still the same queue stay.
	if s.gone || s.state != Waiting || s.seq != seq || s.timedOut {
		return
	}
	s.timer = nil
	s.timedOut = true
	if s.connected {
		m.queues[s.mode].expired.insert(&s.nodes[len(s.interests)])
		m.tryMatch(s, m.clk.Now())
	}
}

// link adds a connected waiting session to the indexes of its mode.
func (m *Memory) link(s *session) {
	q := &m.queues[s.mode]
	for i, in := range s.interests {
		l := q.byInterest[in]
		if l == nil {
			if k := len(m.freeLists); k > 0 {
				l = m.freeLists[k-1]
				m.freeLists = m.freeLists[:k-1]
			} else {
				l = new(qlist)
			}
			l.key = in
			q.byInterest[in] = l
		}
		l.insert(&s.nodes[i])
	}
	if len(s.interests) == 0 {
		q.plain.insert(&s.nodes[0])
	} else if s.timedOut {
		q.expired.insert(&s.nodes[len(s.interests)])
	}
	if s.identity != "" {
		set := m.byIdentity[s.identity]
		if set == nil {
			set = make(map[*session]struct{})
			m.byIdentity[s.identity] = set
		}
		set[s] = struct{}{}
	}
}

// unlink removes s from every index it is in.
func (m *Memory) unlink(s *session) {
	if set := m.byIdentity[s.identity]; set != nil {
		delete(set, s)
		if len(set) == 0 {
			delete(m.byIdentity, s.identity)
		}
	}
	q := &m.queues[s.mode]
	for i := range s.nodes {
		n := &s.nodes[i]
		l := n.list
		if l == nil {
			continue
		}
		l.remove(n)
		if l.head == nil && l != &q.plain && l != &q.expired {
			delete(q.byInterest, l.key)
			l.key = ""
			m.freeLists = append(m.freeLists, l)
		}
	}
}

// tryMatch matches the connected waiting session s with the partner the
// rules choose, if there is one. Only s changed since the last call, so only
// pairs with s can have become possible.
func (m *Memory) tryMatch(s *session, now time.Time) {
	q := &m.queues[s.mode]
	var best, recent *session
	for _, in := range s.interests {
		if l := q.byInterest[in]; l != nil {
			m.scan(l, s, now, &best, &recent)
		}
	}
	if s.open() {
		m.scan(&q.plain, s, now, &best, &recent)
		m.scan(&q.expired, s, now, &best, &recent)
	}
	// Rule 5: a partner s (or that partner) just parted from only when there
	// is no other. It cannot have another acceptable partner waiting either:
	// that pair would have been matched when the later of the two changed.
	if best == nil {
		best = recent
	}
	if best != nil {
		m.match(best, s, now)
	}
}

// scan looks in l (every entry of which accepts s and is accepted by it) for
// the oldest entry that is neither s, nor blocked with s, nor just parted
// from s; those just parted go to *recent instead.
func (m *Memory) scan(l *qlist, s *session, now time.Time, best, recent **session) {
	for n := l.head; n != nil; n = n.next {
		c := n.s
		if *best != nil && c.seq >= (*best).seq {
			return
		}
		if c == s || m.blocked(s, c) {
			continue
		}
		if s.last == c.id || c.last == s.id {
			if *recent == nil || c.seq < (*recent).seq {
				*recent = c
			}
			continue
		}
		*best = c
		return
	}
}

// match pairs two waiting sessions.
func (m *Memory) match(a, b *session, now time.Time) {
	if b.seq < a.seq {
		a, b = b, a
	}
	var common []string
	for _, x := range a.interests {
		for _, y := range b.interests {
			if x == y {
				common = append(common, x)
				break
			}
		}
	}
	if common == nil {
		common = []string{} // never nil: the wire field is always an array
	}
	m.dequeue(a)
	m.dequeue(b)
	room := m.newRoomID()
	for _, x := range [2]*session{a, b} {
		x.state = Chatting
		x.room = room
		x.last = ""
		x.lastEnded = time.Time{}
	}
	a.chat = chatRecord{room: room, mode: a.mode, common: common, started: now, self: a.identity, partner: b.identity}
	b.chat = chatRecord{room: room, mode: b.mode, common: common, started: now, self: b.identity, partner: a.identity}
	a.partner, b.partner = b, a
	m.chats++
	m.matches++
	m.n.Notify(a.id, Event{Kind: EventMatched, Room: room, Partner: b.id, Initiator: true,
		Mode: a.mode, Common: common, Waited: now.Sub(a.enqueuedAt)})
	m.n.Notify(b.id, Event{Kind: EventMatched, Room: room, Partner: a.id,
		Mode: b.mode, Common: common, Waited: now.Sub(b.enqueuedAt)})
}

// endChat ends the chat of s: both become idle and remember each other, and
// the partner gets EventPeerLeft with reason.
func (m *Memory) endChat(s *session, reason Reason, now time.Time) {
	p := s.partner
	room := s.room
	for _, x := range [2]*session{s, p} {
		x.state = Idle
		x.room = ""
		x.partner = nil
		x.lastEnded = now
	}
	s.last, p.last = p.id, s.id
	m.chats--
	m.n.Notify(p.id, Event{Kind: EventPeerLeft, Room: room, Reason: reason})
}

// blocked reports whether x and y must not be matched: their sessions, or
// their identities, were reported. A block lasts until blocksDue or a full
// FIFO removes it (at its expiry on any sane clock), so that every
// observer, CheckInvariants included, sees the same answer at any moment.
func (m *Memory) blocked(x, y *session) bool {
	if len(m.blocks) == 0 {
		return false
	}
	if _, ok := m.blocks[makeBlockKey(sessionBlock, string(x.id), string(y.id))]; ok {
		return true
	}
	k, ok := identityPair(x.identity, y.identity)
	if !ok {
		return false
	}
	_, ok = m.blocks[k]
	return ok
}

// block blocks the pair k for reportBlock from now. A renewed block moves to
// the back of the FIFO with its new expiry; beyond maxBlocks the oldest is
// lifted. The new block is in place before that: the lift retries matching,
// which must not pair the sessions just reported.
func (m *Memory) block(k blockKey, now time.Time) {
	if el := m.blocks[k]; el != nil {
		m.blockFIFO.Remove(el)
		delete(m.blocks, k)
	}
	m.blocks[k] = m.blockFIFO.PushBack(&blockEntry{key: k, until: now.Add(m.reportBlock)})
	for len(m.blocks) > m.maxBlocks {
		m.lift(m.blockFIFO.Front(), now)
	}
	m.armBlockTimer()
}

// armBlockTimer makes the one block timer fire at the expiry of the FIFO's
// head, if there is one.
func (m *Memory) armBlockTimer() {
	front := m.blockFIFO.Front()
	if m.closed || front == nil {
		if m.blockTimer != nil {
			m.blockTimer.Stop()
			m.blockTimer = nil
		}
		return
	}
	until := front.Value.(*blockEntry).until
	if m.blockTimer != nil {
		if m.blockAt.Equal(until) {
			return
		}
		m.blockTimer.Stop()
	}
	m.blockGen++
	gen := m.blockGen
	m.blockAt = until
	m.blockTimer = clock.AfterFuncAt(m.clk, until, func() { m.blocksDue(gen) })
}

// blocksDue lifts the blocks whose time is over, oldest first.
func (m *Memory) blocksDue(gen uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	// A real clock's timer may fire after Stop was called: only the timer
	// armed last counts.
	if gen != m.blockGen || m.blockTimer == nil {
		return
	}
	m.blockTimer = nil
	now := m.clk.Now()
	for {
		front := m.blockFIFO.Front()
		if front == nil || front.Value.(*blockEntry).until.After(now) {
			break
		}
		m.lift(front, now)
	}
	m.armBlockTimer()
}

// lift ends the block el and retries matching for the waiting, connected
// sessions it kept apart, oldest first.
func (m *Memory) lift(el *list.Element, now time.Time) {
	b := m.blockFIFO.Remove(el).(*blockEntry)
	delete(m.blocks, b.key)
	var retry []*session
	switch b.key.kind {
	case sessionBlock:
		for _, id := range [2]string{b.key.a, b.key.b} {
			if s := m.sessions[ids.SessionID(id)]; s != nil && s.state == Waiting && s.connected {
				retry = append(retry, s)
			}
		}
	case identityBlock:
		for _, h := range [2]string{b.key.a, b.key.b} {
			for s := range m.byIdentity[identity.Hash(h)] {
				retry = append(retry, s)
			}
		}
	}
	slices.SortFunc(retry, func(x, y *session) int { return cmp.Compare(x.seq, y.seq) })
	for _, s := range retry {
		// An earlier retry may have matched it.
		if s.state == Waiting && s.connected && !s.gone {
			m.tryMatch(s, now)
		}
	}
}

// CheckInvariants verifies the engine's internal consistency and rule 7 and
// that matching is complete: no two waiting, connected sessions of a mode
// accept each other. It is meant for tests (it is O(waiting²)).
func (m *Memory) CheckInvariants() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var waiting [len(protocol.Modes) + 1]int
	total, chatting := 0, 0
	var ready []*session
	for id, s := range m.sessions {
		if s.id != id || s.gone {
			return fmt.Errorf("session %q: bad record (id %q, gone %v)", id, s.id, s.gone)
		}
		switch s.state {
		case Chatting:
			chatting++
			p := s.partner
			if p == nil {
				return fmt.Errorf("session %q chatting without partner", id)
			}
			if p == s || m.sessions[p.id] != p {
				return fmt.Errorf("session %q chatting with gone or self session %q", id, p.id)
			}
			if p.state != Chatting || p.partner != s || p.room != s.room || s.room == "" {
				return fmt.Errorf("session %q: partner %q not chatting back in room %q", id, p.id, s.room)
			}
			if s.timer != nil || linked(s) {
				return fmt.Errorf("session %q chatting but still queued", id)
			}
		case Waiting:
			if !validMode(s.mode) {
				return fmt.Errorf("session %q waiting with mode %d", id, s.mode)
			}
			waiting[s.mode]++
			total++
			if s.partner != nil || s.room != "" {
				return fmt.Errorf("session %q waiting with a partner", id)
			}
			if err := m.checkLinks(s); err != nil {
				return err
			}
			if s.connected {
				ready = append(ready, s)
			}
		default:
			if s.partner != nil || s.room != "" || s.timer != nil || linked(s) {
				return fmt.Errorf("session %q idle but queued or chatting", id)
			}
		}
	}
	if chatting != 2*m.chats {
		return fmt.Errorf("%d sessions chatting, %d chats counted", chatting, m.chats)
	}
	if total != m.waiting {
		return fmt.Errorf("%d sessions waiting, %d counted", total, m.waiting)
	}
	linkedCount := 0
	for mode := range m.queues {
		q := &m.queues[mode]
		if waiting[mode] != q.waiting {
			return fmt.Errorf("mode %d: %d waiting, %d counted", mode, waiting[mode], q.waiting)
		}
		lists := []*qlist{&q.plain, &q.expired}
		for _, l := range q.byInterest {
			if l.head == nil {
				return fmt.Errorf("mode %d: empty list %q kept", mode, l.key)
			}
			lists = append(lists, l)
		}
		for _, l := range lists {
			var prev *qnode
			for n := l.head; n != nil; n = n.next {
				linkedCount++
				if n.list != l || n.prev != prev || n.s.state != Waiting || !n.s.connected || int(n.s.mode) != mode || n.s.gone {
					return fmt.Errorf("mode %d list %q: bad entry %q", mode, l.key, n.s.id)
				}
				if prev != nil && prev.s.seq >= n.s.seq {
					return fmt.Errorf("mode %d list %q: out of order at %q", mode, l.key, n.s.id)
				}
				prev = n
			}
			if l.tail != prev {
				return fmt.Errorf("mode %d list %q: bad tail", mode, l.key)
			}
		}
	}
	expected := 0
	for _, s := range ready {
		expected += len(s.interests)
		if s.open() {
			expected++
		}
	}
	if linkedCount != expected {
		return fmt.Errorf("%d list entries, %d expected", linkedCount, expected)
	}
	if err := m.checkIndexes(ready); err != nil {
		return err
	}
	for i, a := range ready {
		for _, b := range ready[i+1:] {
			if a.mode == b.mode && accepts(a, b) && accepts(b, a) && !m.blocked(a, b) {
				return fmt.Errorf("sessions %q and %q wait for each other unmatched", a.id, b.id)
			}
		}
	}
	return nil
}

// checkIndexes verifies byIdentity against the connected waiting sessions
// and the block FIFO against the block map: the same entries, in order of
// expiry, within the cap.
func (m *Memory) checkIndexes(ready []*session) error {
	indexed := 0
	for h, set := range m.byIdentity {
		if len(set) == 0 {
			return fmt.Errorf("identity %q: empty set kept", h)
		}
		indexed += len(set)
		for s := range set {
			if s.identity != h || s.state != Waiting || !s.connected || s.gone {
				return fmt.Errorf("identity %q: holds session %q, which is not a connected waiting session of it", h, s.id)
			}
		}
	}
	withIdentity := 0
	for _, s := range ready {
		if s.identity != "" {
			withIdentity++
		}
	}
	if indexed != withIdentity {
		return fmt.Errorf("%d sessions indexed by identity, %d expected", indexed, withIdentity)
	}
	if m.blockFIFO.Len() != len(m.blocks) || len(m.blocks) > m.maxBlocks {
		return fmt.Errorf("%d blocks in the FIFO, %d in the map (cap %d)", m.blockFIFO.Len(), len(m.blocks), m.maxBlocks)
	}
	var prev time.Time
	for el := m.blockFIFO.Front(); el != nil; el = el.Next() {
		b := el.Value.(*blockEntry)
		if m.blocks[b.key] != el {
			return fmt.Errorf("block %v: in the FIFO but not the map", b.key)
		}
		if b.until.Before(prev) {
			return fmt.Errorf("block %v: out of expiry order", b.key)
		}
		prev = b.until
	}
	if front := m.blockFIFO.Front(); front != nil && !m.closed && (m.blockTimer == nil || !m.blockAt.Equal(front.Value.(*blockEntry).until)) {
		return fmt.Errorf("block timer not armed for the oldest block")
	}
	return nil
}

func linked(s *session) bool {
	for i := range s.nodes {
		if s.nodes[i].list != nil {
			return true
		}
	}
	return false
}

// checkLinks verifies that a waiting session is in exactly the lists it
// belongs to.
func (m *Memory) checkLinks(s *session) error {
	q := &m.queues[s.mode]
	if len(s.nodes) != len(s.interests)+1 {
		return fmt.Errorf("session %q: %d nodes for %d interests", s.id, len(s.nodes), len(s.interests))
	}
	for i, in := range s.interests {
		want := (*qlist)(nil)
		if s.connected {
			want = q.byInterest[in]
			if want == nil {
				return fmt.Errorf("session %q: no list for interest %q", s.id, in)
			}
		}
		if s.nodes[i].list != want {
			return fmt.Errorf("session %q: not in the list of %q", s.id, in)
		}
	}
	want := (*qlist)(nil)
	switch {
	case !s.connected:
	case len(s.interests) == 0:
		want = &q.plain
	case s.timedOut:
		want = &q.expired
	}
	if s.nodes[len(s.interests)].list != want {
		return fmt.Errorf("session %q: wrong accepts-anyone list", s.id)
	}
	if len(s.interests) > 0 && !s.timedOut && s.timer == nil && !m.closed {
		return fmt.Errorf("session %q: interest timer missing", s.id)
	}
	return nil
}

// accepts reports whether waiting session a accepts b (rule 3).
func accepts(a, b *session) bool {
	if a.open() {
		return true
	}
	for _, x := range a.interests {
		for _, y := range b.interests {
			if x == y {
				return true
			}
		}
	}
	return false
}
