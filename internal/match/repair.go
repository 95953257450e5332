package match

// View is what the session code believes of a session's chat: its state and,
// while chatting, its room.
type View struct {
	State State
	Room  RoomID
}

// Repair tells how to bring a session's view in line with the engine's
// record (Redis.Snapshot; ok false: no record, i.e. idle) after events for
// it may have been lost: a node's subscription broke (cluster.Local
// Resubscribed), an operation's marker never came back, or Redis lost its
// data (Fenced). It returns the events to apply to the view, in order, as
// if they had arrived, and whether the session must join again with its last
// prefs (it is waiting in its view but the engine lost its queue place).
//
// A chat the engine no longer has ends with peer_left "disconnected" (the
// protocol's word for a partner lost to a failure); a chat the view missed
// starts with matched (Waited unknown: 0).
func Repair(v View, snap Snapshot, ok bool) (evs []Event, rejoin bool) {
	if !ok {
		snap = Snapshot{}
	}
	if v.State == Chatting {
		if snap.State == Chatting && snap.Room == v.Room {
			return nil, false
		}
		evs = append(evs, Event{Kind: EventPeerLeft, Room: v.Room, Reason: ReasonDisconnected})
		v = View{State: Idle}
	}
	switch snap.State {
	case Chatting:
		common := snap.Common
		if common == nil {
			common = []string{}
		}
		evs = append(evs, Event{Kind: EventMatched, Room: snap.Room, Partner: snap.Partner,
			Initiator: snap.Initiator, Mode: snap.Prefs.Mode, Common: common})
	case Waiting:
		if v.State != Waiting {
			evs = append(evs, Event{Kind: EventWaiting})
		}
	default:
		rejoin = v.State == Waiting
	}
	return evs, rejoin
}
