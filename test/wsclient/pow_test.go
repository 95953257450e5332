package wsclient

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/strangerchat/stranger/internal/pow"
)

// The client solves the welcome's challenge and attaches the solution to
// join and next only, leaving the rest of each frame as written; a
// pow_required brings a new challenge, whose solution replaces the old.
func TestClientSolvesPow(t *testing.T) {
	v, err := pow.New(pow.Options{Key: []byte("wsclient-test-key-0123"), MaxNumber: 3000, Replay: pow.NewMemoryReplay(0)})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	challengeJSON := func() string {
		c, _ := v.Challenge(now)
		b, _ := json.Marshal(c)
		return string(b)
	}
	got := make(chan []string, 1)
	url := fakeNode(t, func(ws *websocket.Conn, _ *http.Request) {
		write(t, ws, `{"type":"welcome","session":"s","resumeToken":"t","resumed":false,"pow":`+challengeJSON()+`}`)
		var frames []string
		for i := 0; i < 4; i++ {
			_, b, err := ws.ReadMessage()
			if err != nil {
				t.Errorf("server read: %v", err)
				break
			}
			frames = append(frames, string(b))
			if i == 2 {
				write(t, ws, `{"type":"error","seq":1,"code":"pow_required","message":"m","pow":`+challengeJSON()+`}`)
			}
		}
		got <- frames
	})
	c, err := Connect(context.Background(), url, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	first := c.Conn().Pow()
	if err := v.Verify(context.Background(), first, now); err != nil {
		t.Fatalf("the client's solution of the welcome: %v", err)
	}
	_ = c.Conn().Send(`{ "type" : "join","mode":"text"}`)
	_ = c.Conn().Send(map[string]any{"type": "leave"})
	_ = c.Conn().Send(`{"type":"next"}`)
	if f, err := c.Conn().NextWithin(2 * time.Second); err != nil || f.Str("code") != "pow_required" {
		t.Fatalf("%v %v", f, err)
	}
	_ = c.Conn().Send(`{"type":"next","pow":"mine"}`)
	frames := <-got
	want := []string{
		`{"pow":"` + first + `", "type" : "join","mode":"text"}`,
		`{"type":"leave"}`,
		`{"pow":"` + first + `","type":"next"}`,
		`{"type":"next","pow":"mine"}`,
	}
	for i := range want {
		if i >= len(frames) || frames[i] != want[i] {
			t.Fatalf("frame %d: got %v, want %s", i, frames, want[i])
		}
	}
	if second := c.Conn().Pow(); second == first || second == "" {
		t.Fatal("pow_required's challenge was not solved")
	}
}

// With ManualPow nothing is solved or attached.
func TestClientManualPow(t *testing.T) {
	v, _ := pow.New(pow.Options{Key: []byte("wsclient-test-key-0123"), MaxNumber: 10, Replay: pow.NewMemoryReplay(0)})
	ch, _ := v.Challenge(time.Now())
	cj, _ := json.Marshal(ch)
	got := make(chan string, 1)
	url := fakeNode(t, func(ws *websocket.Conn, _ *http.Request) {
		write(t, ws, `{"type":"welcome","session":"s","resumeToken":"t","resumed":false,"pow":`+string(cj)+`}`)
		_, b, _ := ws.ReadMessage()
		got <- string(b)
	})
	c, err := Connect(context.Background(), url, Options{DialOptions: DialOptions{ManualPow: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.Conn().Send(`{"type":"join"}`)
	if b := <-got; b != `{"type":"join"}` {
		t.Fatalf("sent %s", b)
	}
}
