package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/strangerchat/stranger/internal/ids"
)

// ErrUnknownToken: the resume token is unknown, used or expired.
var ErrUnknownToken = errors.New("cluster: unknown resume token")

// Resume tokens must work on every node: a client may resume on any node
// behind the load balancer. The directory keeps, per token, the session
// and the node that issued it. Only a hash of the token is stored, so a
// reader of Redis cannot take sessions over.

func (n *Node) tokenKey(token string) string {
	sum := sha256.Sum256([]byte(token))
	return n.prefix + "tok:" + hex.EncodeToString(sum[:])
}

// PutToken records that token resumes session, held by this node, for ttl.
func (n *Node) PutToken(ctx context.Context, token string, session ids.SessionID, ttl time.Duration) error {
	if err := n.rdb.Set(ctx, n.tokenKey(token), string(session)+"\n"+string(n.id), ttl).Err(); err != nil {
		return fmt.Errorf("cluster: put token: %w", err)
	}
	return nil
}

// TakeToken consumes token (a token works once) and returns its session and
// the node that issued it; ErrUnknownToken if there is none.
func (n *Node) TakeToken(ctx context.Context, token string) (session ids.SessionID, node ids.NodeID, err error) {
	v, err := n.rdb.GetDel(ctx, n.tokenKey(token)).Result()
	if errors.Is(err, redis.Nil) {
		return "", "", ErrUnknownToken
	}
	if err != nil {
		return "", "", fmt.Errorf("cluster: take token: %w", err)
	}
	s, nd, _ := strings.Cut(v, "\n")
	return ids.SessionID(s), ids.NodeID(nd), nil
}

// DropToken forgets token (the session ended, or its token was rotated).
func (n *Node) DropToken(ctx context.Context, token string) error {
	if err := n.rdb.Del(ctx, n.tokenKey(token)).Err(); err != nil {
		return fmt.Errorf("cluster: drop token: %w", err)
	}
	return nil
}

// Alive reports whether node's heartbeat is alive (a handover request to a
// dead node would only time out).
func (n *Node) Alive(ctx context.Context, node ids.NodeID) (bool, error) {
	c, err := n.rdb.Exists(ctx, HeartbeatKey(n.prefix, node)).Result()
	if err != nil {
		return false, fmt.Errorf("cluster: alive: %w", err)
	}
	return c == 1, nil
}

// LiveNodes lists the nodes of the deployment whose heartbeat is alive,
// this one included once it has started.
func (n *Node) LiveNodes(ctx context.Context) ([]ids.NodeID, error) {
	members, err := n.rdb.SMembers(ctx, NodesKey(n.prefix)).Result()
	if err != nil {
		return nil, fmt.Errorf("cluster: live nodes: %w", err)
	}
	var live []ids.NodeID
	for _, m := range members {
		ok, err := n.Alive(ctx, ids.NodeID(m))
		if err != nil {
			return nil, err
		}
		if ok {
			live = append(live, ids.NodeID(m))
		}
	}
	return live, nil
}
