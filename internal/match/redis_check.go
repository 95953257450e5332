package match

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/strangerchat/stranger/internal/protocol"
)

// CheckInvariants reads every key of the deployment in one atomic script and
// verifies what CheckInvariants of Memory verifies: rule 7 (chats are pairs
// of sessions naming each other), queues holding exactly the connected
// waiting sessions in seq order, the counters, the node sets, and that
// matching is complete (no two waiting, connected sessions of a mode accept
// each other). For tests: it uses KEYS and is O(waiting²).
func (r *Redis) CheckInvariants(ctx context.Context) error {
	res, err := r.run(ctx, "dump", r.sc.dump, false)
	if err != nil {
		return err
	}
	var raw [][3]json.RawMessage
	if err := json.Unmarshal([]byte(res[1]), &raw); err != nil {
		if res[1] == "{}" {
			raw = nil // no keys at all
		} else {
			return fmt.Errorf("dump: %w", err)
		}
	}
	p := r.node.Prefix()
	type sess struct {
		id  string
		f   map[string]string
		ins []string
	}
	sessions := map[string]*sess{}
	zsets := map[string]map[string]float64{}
	sets := map[string][]string{}
	strs := map[string]string{}
	var stats map[string]string
	for _, e := range raw {
		var key, typ string
		_ = json.Unmarshal(e[0], &key)
		_ = json.Unmarshal(e[1], &typ)
		var vals []string
		if len(e[2]) > 0 && e[2][0] == '[' {
			if err := json.Unmarshal(e[2], &vals); err != nil {
				return fmt.Errorf("dump %s: %w", key, err)
			}
		}
		name := strings.TrimPrefix(key, p)
		switch typ {
		case "hash":
			f := map[string]string{}
			for i := 0; i+1 < len(vals); i += 2 {
				f[vals[i]] = vals[i+1]
			}
			if id, ok := strings.CutPrefix(name, "s:"); ok {
				sessions[id] = &sess{id: id, f: f, ins: decodeList(f["in"])}
			} else if name == "stats" {
				stats = f
			}
		case "zset":
			z := map[string]float64{}
			for i := 0; i+1 < len(vals); i += 2 {
				v, _ := strconv.ParseFloat(vals[i+1], 64)
				z[vals[i]] = v
			}
			zsets[name] = z
		case "set":
			sets[name] = vals
		case "string":
			if len(vals) == 1 {
				strs[name] = vals[0]
			}
		}
	}
	num := func(m map[string]string, k string) int { v, _ := strconv.Atoi(m[k]); return v }
	var waiting [len(protocol.Modes) + 1]int
	total, chatting := 0, 0
	expected := map[string]map[string]float64{} // queue -> member -> seq
	want := func(q, id string, seq float64) {
		if expected[q] == nil {
			expected[q] = map[string]float64{}
		}
		expected[q][id] = seq
	}
	var ready []*sess
	wantIW := map[string][]string{} // identity index -> its connected waiting sessions
	for id, s := range sessions {
		f := s.f
		if f["nd"] == "" || !slices.Contains(sets["ns:"+f["nd"]], id) {
			return fmt.Errorf("session %q: not in the set of its node %q", id, f["nd"])
		}
		switch f["st"] {
		case "2":
			chatting++
			pt := sessions[f["pt"]]
			if pt == nil || f["pt"] == id {
				return fmt.Errorf("session %q chatting with gone or self session %q", id, f["pt"])
			}
			if pt.f["st"] != "2" || pt.f["pt"] != id || pt.f["rm"] != f["rm"] || f["rm"] == "" {
				return fmt.Errorf("session %q: partner %q not chatting back in room %q", id, f["pt"], f["rm"])
			}
			if f["ini"] == pt.f["ini"] || f["cm"] != pt.f["cm"] {
				return fmt.Errorf("session %q: initiator or common inconsistent with %q", id, f["pt"])
			}
		case "1":
			md, _ := strconv.Atoi(f["md"])
			if !validMode(protocol.Mode(md)) {
				return fmt.Errorf("session %q waiting with mode %q", id, f["md"])
			}
			waiting[md]++
			total++
			if f["pt"] != "" || f["rm"] != "" {
				return fmt.Errorf("session %q waiting with a partner", id)
			}
			if f["cn"] == "1" {
				ready = append(ready, s)
				if f["ih"] != "" {
					wantIW["iw:"+f["ih"]] = append(wantIW["iw:"+f["ih"]], id)
				}
				seq, _ := strconv.ParseFloat(f["sq"], 64)
				for _, x := range s.ins {
					want(fmt.Sprintf("q:%d:i:%s", md, x), id, seq)
				}
				if len(s.ins) == 0 {
					want(fmt.Sprintf("q:%d:p", md), id, seq)
				} else if f["to"] == "1" {
					want(fmt.Sprintf("q:%d:x", md), id, seq)
				} else {
					want(fmt.Sprintf("q:%d:t", md), id, seq)
				}
			}
		case "0":
			if f["pt"] != "" || f["rm"] != "" {
				return fmt.Errorf("session %q idle but chatting", id)
			}
		default:
			return fmt.Errorf("session %q: bad state %q", id, f["st"])
		}
	}
	for name, z := range zsets {
		if !strings.HasPrefix(name, "q:") {
			continue
		}
		if !mapsEqual(z, expected[name]) {
			return fmt.Errorf("queue %q holds %v, want %v", name, z, expected[name])
		}
	}
	for name, e := range expected {
		if zsets[name] == nil {
			return fmt.Errorf("queue %q missing, want %v", name, e)
		}
	}
	for name, e := range wantIW {
		if sets[name] == nil {
			return fmt.Errorf("identity index %q missing, want %v", name, e)
		}
	}
	for m := range zsets["iblocks"] {
		if _, ok := strs["bi:"+m]; !ok {
			return fmt.Errorf("identity block %q listed without its key", m)
		}
	}
	for name, members := range sets {
		if strings.HasPrefix(name, "iw:") {
			got, want := slices.Sorted(slices.Values(members)), slices.Sorted(slices.Values(wantIW[name]))
			if !slices.Equal(got, want) {
				return fmt.Errorf("identity index %q holds %v, want %v", name, got, want)
			}
			continue
		}
		node, ok := strings.CutPrefix(name, "ns:")
		if !ok {
			continue
		}
		for _, id := range members {
			if s := sessions[id]; s == nil || s.f["nd"] != node {
				return fmt.Errorf("node set %q holds %q, which is not its session", node, id)
			}
		}
	}
	if chatting != 2*num(stats, "chats") {
		return fmt.Errorf("%d sessions chatting, %d chats counted", chatting, num(stats, "chats"))
	}
	if total != num(stats, "w") {
		return fmt.Errorf("%d sessions waiting, %d counted", total, num(stats, "w"))
	}
	for _, m := range protocol.Modes {
		if waiting[m] != num(stats, "w"+strconv.Itoa(int(m))) {
			return fmt.Errorf("mode %d: %d waiting, %d counted", m, waiting[m], num(stats, "w"+strconv.Itoa(int(m))))
		}
	}
	if len(sessions) != num(stats, "sessions") {
		return fmt.Errorf("%d session records, %d counted", len(sessions), num(stats, "sessions"))
	}
	open := func(s *sess) bool { return len(s.ins) == 0 || s.f["to"] == "1" }
	accepts := func(a, b *sess) bool {
		if open(a) {
			return true
		}
		for _, x := range a.ins {
			if slices.Contains(b.ins, x) {
				return true
			}
		}
		return false
	}
	for i, a := range ready {
		for _, b := range ready[i+1:] {
			if a.f["md"] != b.f["md"] || !accepts(a, b) || !accepts(b, a) {
				continue
			}
			x, y := a.id, b.id
			if x > y {
				x, y = y, x
			}
			if _, blocked := strs["b:"+x+"\t"+y]; blocked {
				continue
			}
			if ia, ib := a.f["ih"], b.f["ih"]; ia != "" && ib != "" && ia != ib {
				if ia > ib {
					ia, ib = ib, ia
				}
				if _, blocked := strs["bi:"+ia+"\t"+ib]; blocked {
					continue
				}
			}
			return fmt.Errorf("sessions %q and %q wait for each other unmatched", a.id, b.id)
		}
	}
	return nil
}

func mapsEqual(a, b map[string]float64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
