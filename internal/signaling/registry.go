package signaling

import (
	"context"
	"net/http"

	"github.com/strangerchat/stranger/internal/ids"
)

// The hub's registry: which sessions this node holds, which resume token
// names which of them, and how many connections each IP has. All under
// h.mu, which is taken after a session's mu, never before it.

// admit decides whether a new connection from ip may be upgraded (the
// per-IP cap, and the node's session cap, which a resume does not count
// against) and counts it for ip. A refusal is an HTTP status and message;
// an admitted connection is released with releaseIP when it ends.
func (h *Hub) admit(ip string, resuming bool) (status int, msg string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.opts.MaxConnsPerIP > 0 && h.perIP[ip] >= h.opts.MaxConnsPerIP {
		return http.StatusTooManyRequests, "too many connections from your address"
	}
	if h.opts.MaxSessions > 0 && len(h.sessions) >= h.opts.MaxSessions && !resuming {
		return http.StatusServiceUnavailable, "node is full; try again later"
	}
	h.perIP[ip]++
	return 0, ""
}

func (h *Hub) releaseIP(ip string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.perIP[ip] <= 1 {
		delete(h.perIP, ip)
	} else {
		h.perIP[ip]--
	}
}

// register adds a new session and its resume token.
func (h *Hub) register(s *session, token string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.sessions[s.id] = s
	h.tokens[token] = s
}

// registerArriving adds a session on its way from another node, unless
// this node already has one with that id (a racing resume of it won).
func (h *Hub) registerArriving(s *session) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.sessions[s.id] != nil {
		return false
	}
	h.sessions[s.id] = s
	return true
}

// unregister removes s and its token, if they are still s's.
func (h *Hub) unregister(s *session, token string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.sessions[s.id] == s {
		delete(h.sessions, s.id)
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

func (h *Hub) hasToken(token string) bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	_, ok := h.tokens[token]
	return ok
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
