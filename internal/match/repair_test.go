package match_test

import (
	"fmt"
	"testing"

	"github.com/strangerchat/stranger/internal/match"
)

func TestRepair(t *testing.T) {
	chat := match.Snapshot{State: match.Chatting, Room: "r2", Partner: "p", Initiator: true,
		Prefs: match.Prefs{Mode: text}, Common: []string{"x"}}
	matchedR2 := match.Event{Kind: match.EventMatched, Room: "r2", Partner: "p", Initiator: true, Mode: text, Common: []string{"x"}}
	left := func(room match.RoomID) match.Event {
		return match.Event{Kind: match.EventPeerLeft, Room: room, Reason: match.ReasonDisconnected}
	}
	wait := match.Event{Kind: match.EventWaiting}
	for _, tc := range []struct {
		name   string
		v      match.View
		snap   match.Snapshot
		ok     bool
		evs    []match.Event
		rejoin bool
	}{
		{"in step chatting", match.View{State: match.Chatting, Room: "r2"}, chat, true, nil, false},
		{"in step waiting", match.View{State: match.Waiting}, match.Snapshot{State: match.Waiting}, true, nil, false},
		{"in step idle", match.View{}, match.Snapshot{}, false, nil, false},
		{"lost peer_left", match.View{State: match.Chatting, Room: "r1"}, match.Snapshot{State: match.Idle}, true, []match.Event{left("r1")}, false},
		{"lost peer_left and matched", match.View{State: match.Chatting, Room: "r1"}, chat, true, []match.Event{left("r1"), matchedR2}, false},
		{"lost peer_left, waiting again", match.View{State: match.Chatting, Room: "r1"}, match.Snapshot{State: match.Waiting}, true, []match.Event{left("r1"), wait}, false},
		{"lost matched", match.View{State: match.Waiting}, chat, true, []match.Event{matchedR2}, false},
		{"lost waiting", match.View{}, match.Snapshot{State: match.Waiting}, true, []match.Event{wait}, false},
		{"lost queue place", match.View{State: match.Waiting}, match.Snapshot{}, false, nil, true},
		{"chat lost with the data", match.View{State: match.Chatting, Room: "r1"}, match.Snapshot{}, false, []match.Event{left("r1")}, false},
	} {
		evs, rejoin := match.Repair(tc.v, tc.snap, tc.ok)
		if fmt.Sprint(evs) != fmt.Sprint(tc.evs) || rejoin != tc.rejoin {
			t.Errorf("%s: got %v rejoin=%v, want %v rejoin=%v", tc.name, evs, rejoin, tc.evs, tc.rejoin)
		}
	}
}
