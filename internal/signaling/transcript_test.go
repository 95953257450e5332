package signaling

import (
	"fmt"
	"testing"
	"time"

	"github.com/strangerchat/stranger/internal/match"
	"github.com/strangerchat/stranger/internal/modstore"
)

// TestTranscript: the last 20 lines of one chat, as seen from the reporter;
// a new chat starts afresh; the lines go once a report can no longer come.
func TestTranscript(t *testing.T) {
	at := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	var tr transcript
	for i := range 25 {
		tr.add("r1", i%2 == 0, fmt.Sprint("line ", i), at.Add(time.Duration(i)*time.Second))
	}
	got := tr.messages("r1")
	if len(got) != transcriptLines || got[0].Text != "line 5" || got[19].Text != "line 24" {
		t.Fatalf("kept %d lines from %q to %q; want the last 20", len(got), got[0].Text, got[len(got)-1].Text)
	}
	if got[19].From != modstore.SideReporter || got[18].From != modstore.SideReported {
		t.Fatalf("sides %s, %s: want the session's own lines as the reporter's", got[19].From, got[18].From)
	}
	if m := tr.messages("r0"); m != nil {
		t.Fatalf("lines of another chat: %v", m)
	}
	tr.add("r2", true, "new chat", at)
	if m := tr.messages("r2"); len(m) != 1 {
		t.Fatalf("a new chat kept %d lines, want only its own", len(m))
	}

	ended := at.Add(time.Minute)
	tr.forgetLocked(match.Chatting, ended, ended.Add(time.Hour))
	tr.forgetLocked(match.Idle, ended, ended.Add(reportMemory))
	if len(tr.Lines) != 1 {
		t.Fatal("lines dropped while chatting or while a report could still come")
	}
	tr.forgetLocked(match.Idle, ended, ended.Add(reportMemory+time.Second))
	if len(tr.Lines) != 0 {
		t.Fatal("lines kept after the report window")
	}
}
