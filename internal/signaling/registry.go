package signaling

import (
	"context"

	"github.com/strangerchat/stranger/internal/identity"
	"github.com/strangerchat/stranger/internal/ids"
)

// The hub's registry: which sessions this node holds, which resume token
// names which of them, and what each identity holds (quota.go). All under
// h.mu, which is taken after a session's mu, never before it.

// register adds a new session and its resume token, counting it against
// the identity id with the reservation its connection was admitted with.
func (h *Hub) register(s *session, token string, id identity.Identity) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.sessions[s.id] = s
	h.tokens[token] = s
	h.countLocked(s, id, true)
}

// registerArriving adds a session on its way from another node, unless
// this node already has one with that id (a racing resume of it won). It
// counts against the identity id of the connection resuming it, with no
// cap: it takes over a session that was counted on its old node.
func (h *Hub) registerArriving(s *session, id identity.Identity) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.sessions[s.id] != nil {
		return false
	}
	h.sessions[s.id] = s
	h.countLocked(s, id, false)
	return true
}

// unregister removes s and its token, if they are still s's.
func (h *Hub) unregister(s *session, token string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.sessions[s.id] == s {
		delete(h.sessions, s.id)
		h.uncountLocked(s)
	}
	if token != "" && h.tokens[token] == s {
		delete(h.tokens, token)
	}
}

func (h *Hub) registerToken(token string, s *session) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.tokens[token] = s
}

// takeToken consumes a local resume token: it returns its session, or nil.
func (h *Hub) takeToken(token string) *session {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.tokens[token]
	delete(h.tokens, token)
	return s
}

// snapshot lists the sessions. Lock order is session.mu before hub.mu, so
// code that needs both takes this copy instead of locking sessions under h.mu.
func (h *Hub) snapshot() []*session {
	h.mu.RLock()
	defer h.mu.RUnlock()
	list := make([]*session, 0, len(h.sessions))
	for _, s := range h.sessions {
		list = append(list, s)
	}
	return list
}

// lookup returns the local session id, or nil.
func (h *Hub) lookup(id ids.SessionID) *session {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.sessions[id]
}

// putToken publishes a resume token to the deployment (no-op on one node).
// It is written before the welcome that carries it, so a client can resume
// on any node as soon as it knows its token.
func (h *Hub) putToken(tok string, id ids.SessionID) {
	if h.cluster == nil {
		return
	}
	if err := h.call(func(ctx context.Context) error { return h.cluster.PutToken(ctx, tok, id) }); err != nil {
		h.log.Warn("resume token not shared; a resume on another node will fail", "session", string(id), "err", err)
	}
}

func (h *Hub) dropToken(tok string) {
	if h.cluster == nil || tok == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), engineTimeout)
	defer cancel()
	h.cluster.DropToken(ctx, tok)
}
