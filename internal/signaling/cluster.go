package signaling

import (
	"context"
	"errors"
	"time"

	"github.com/strangerchat/stranger/internal/identity"
	"github.com/strangerchat/stranger/internal/ids"
	"github.com/strangerchat/stranger/internal/match"
	"github.com/strangerchat/stranger/internal/protocol"
)

// Cluster is the seam to the other nodes of a deployment (nil on a single
// node). It moves three things between nodes: relayed messages to sessions
// held elsewhere, resume tokens valid on every node, and sessions themselves
// when a client resumes on another node than the one that held it.
type Cluster interface {
	// Relay hands payload to session to, wherever it is connected, and
	// records that from's client frame inSeq was processed. ErrNoRoute if
	// the session is nowhere. Calls from one goroutine arrive in order.
	Relay(ctx context.Context, from ids.SessionID, inSeq int64, to ids.SessionID, payload []byte) error
	// Online counts live connections across the deployment.
	Online() int
	// PutToken makes token resume session on any node; TakeToken consumes
	// it (ErrUnknownToken if unknown, used or expired) and names the node
	// that issued it; DropToken forgets it.
	PutToken(ctx context.Context, token string, session ids.SessionID) error
	TakeToken(ctx context.Context, token string) (session ids.SessionID, owner ids.NodeID, err error)
	DropToken(ctx context.Context, token string)
	// Fetch moves session to this node: from its live owner (which hands
	// over its frames too), or from the engine's record if the owner died.
	// Found is false when the session no longer exists.
	Fetch(ctx context.Context, session ids.SessionID, owner ids.NodeID, token string) (Transfer, error)
}

// Errors a Cluster returns.
var (
	ErrNoRoute      = errors.New("signaling: no node holds the session")
	ErrUnknownToken = errors.New("signaling: unknown resume token")
)

// Transfer is a session moving between nodes.
type Transfer struct {
	Found bool `json:"found"`
	// Live: handed over by its node, with its frames and seq counters.
	// Otherwise rebuilt from the engine's record: the frames the dead node
	// held are lost and seq continues from the client's `last`.
	Live      bool          `json:"live"`
	State     match.State   `json:"state"`
	Room      match.RoomID  `json:"room,omitempty"`
	Partner   ids.SessionID `json:"partner,omitempty"`
	Initiator bool          `json:"initiator,omitempty"`
	Mode      protocol.Mode `json:"mode,omitempty"`
	Common    []string      `json:"common,omitempty"`
	Prefs     match.Prefs   `json:"prefs"`
	LastChat  time.Time     `json:"lastChat"`
	InSeq     int64         `json:"inSeq"`
	OutSeq    int64         `json:"outSeq"`
	Acked     int64         `json:"acked"`
	Written   int64         `json:"written"`
	Held      [][]byte      `json:"held,omitempty"` // frames acked+1 … outSeq
	IP        string        `json:"ip,omitempty"`
	Budget    float64       `json:"budget"`
	// Who and Lines: the person's identity and the chat messages a report
	// would carry (moderation.go).
	Who   identity.Hash `json:"who,omitempty"`
	Lines transcript    `json:"lines"`
	// Requeue: the join/next budget's tokens (quota.go), so a resume on
	// another node does not refill it; nil from a node that does not limit
	// join/next (or predates the budget): a full budget.
	Requeue *float64 `json:"requeue,omitempty"`
	PowOwed bool     `json:"powOwed,omitempty"` // the session has not yet given its proof of work
}
