package server

import (
	"crypto/rand"
	"fmt"

	"github.com/strangerchat/stranger/internal/config"
	"github.com/strangerchat/stranger/internal/pow"
	"github.com/strangerchat/stranger/internal/redisnode"
	"github.com/strangerchat/stranger/internal/signaling"
)

// newPow builds the proof-of-work verifier of --pow-difficulty (nil when
// it is 0). Used solutions are remembered in the deployment's Redis when
// there is one, so that one is refused on every node; else in memory.
func newPow(cfg config.Config, backend *redisnode.Backend) (signaling.ProofOfWork, error) {
	if cfg.PowDifficulty == 0 {
		return nil, nil
	}
	// TODO(lead): derive the key from the deployment key in the moderation
	// store, so every node signs and checks with the same one. Until then
	// each process has its own: a session's welcome and first join reach
	// the same node, and a session resumed on another node before its
	// first join is given that node's challenge, so this works on one node
	// and on several; only a solution carried to another node fails (and
	// gets pow_required with a fresh challenge).
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("proof of work key: %w", err)
	}
	var replay pow.Replay = pow.NewMemoryReplay(0)
	if backend != nil {
		replay = pow.NewRedisReplay(backend.Client(), "pow:")
	}
	v, err := pow.New(pow.Options{Key: key, MaxNumber: cfg.PowDifficulty, Replay: replay})
	if err != nil {
		return nil, fmt.Errorf("--pow-difficulty: %w", err)
	}
	return v, nil
}
