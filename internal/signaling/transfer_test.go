package signaling

import (
	"reflect"
	"testing"

	"github.com/strangerchat/stranger/internal/match"
	"github.com/strangerchat/stranger/internal/protocol"
)

// A session rebuilt on another node keeps the identity of its last join
// with its prefs: the engine captures it at the session's next match.
func TestTransferKeepsPrefsIdentity(t *testing.T) {
	in := Transfer{Found: true, State: match.Waiting,
		Prefs: match.Prefs{Mode: protocol.ModeText, Interests: []string{"go"}, Identity: "a000000000000001"}}
	out, err := DecodeTransfer(EncodeTransfer(in))
	if err != nil || !reflect.DeepEqual(out.Prefs, in.Prefs) {
		t.Fatalf("prefs after the transfer: %+v %v, want %+v", out.Prefs, err, in.Prefs)
	}
}
