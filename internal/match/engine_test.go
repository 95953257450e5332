package match_test

import (
	"github.com/strangerchat/stranger/internal/match"
	"github.com/strangerchat/stranger/internal/signaling"
)

// The in-memory engine is a signaling.Engine. The check lives in a test so
// that package match never imports signaling (which imports match).
var _ signaling.Engine = (*match.Memory)(nil)

var _ signaling.Engine = (*match.Redis)(nil)
