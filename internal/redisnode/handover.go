package redisnode

import (
	"errors"
	"strings"

	"github.com/strangerchat/stranger/internal/ids"
)

// kindHandover is the request a node sends to the node holding a session
// that a client resumes on the first one (cluster.Node.Request). The answer
// is the session's signaling.Transfer (signaling.EncodeTransfer).
const kindHandover byte = 'h'

// handoverRequest asks the owner of Session to hand it over to Requester;
// Token is the resume token the client presented, which the owner checks.
type handoverRequest struct {
	Session   ids.SessionID
	Token     string
	Requester ids.NodeID
}

var errBadHandover = errors.New("redisnode: malformed handover request")

// encodeHandover: session, "\n", token, "\n", requester. The fields are
// ids and tokens this code generated, never free text; one holding a
// newline is refused rather than sent ambiguous.
func encodeHandover(r handoverRequest) ([]byte, error) {
	for _, f := range []string{string(r.Session), r.Token, string(r.Requester)} {
		if f == "" || strings.ContainsRune(f, '\n') {
			return nil, errBadHandover
		}
	}
	return []byte(string(r.Session) + "\n" + r.Token + "\n" + string(r.Requester)), nil
}

// decodeHandover is the inverse of encodeHandover.
func decodeHandover(b []byte) (handoverRequest, error) {
	parts := strings.Split(string(b), "\n")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return handoverRequest{}, errBadHandover
	}
	return handoverRequest{Session: ids.SessionID(parts[0]), Token: parts[1], Requester: ids.NodeID(parts[2])}, nil
}
