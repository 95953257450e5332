package server

import (
	"crypto/hmac"
	"crypto/sha256"
	"fmt"

	"github.com/strangerchat/stranger/internal/cluster"
	"github.com/strangerchat/stranger/internal/config"
	"github.com/strangerchat/stranger/internal/pow"
	"github.com/strangerchat/stranger/internal/redisnode"
	"github.com/strangerchat/stranger/internal/signaling"
)

// newPow builds the proof-of-work verifier of --pow-difficulty (nil when
// it is 0). Used solutions are remembered in the deployment's Redis when
// there is one, so that one is refused on every node; else in memory.
func newPow(cfg config.Config, backend *redisnode.Backend, deploymentKey []byte) (signaling.ProofOfWork, error) {
	if cfg.PowDifficulty == 0 {
		return nil, nil
	}
	var replay pow.Replay = pow.NewMemoryReplay(0)
	if backend != nil {
		replay = pow.NewRedisReplay(backend.Client(), cluster.DefaultPrefix+"pow:")
	}
	// Every node signs and checks challenges with the same key, derived from
	// the deployment's (the moderation store's, or --identity-key-file),
	// so a solution is good on whichever node the join reaches.
	mac := hmac.New(sha256.New, deploymentKey)
	mac.Write([]byte("stranger proof of work"))
	key := mac.Sum(nil)
	v, err := pow.New(pow.Options{Key: key, MaxNumber: cfg.PowDifficulty, Replay: replay})
	if err != nil {
		return nil, fmt.Errorf("--pow-difficulty: %w", err)
	}
	return v, nil
}
