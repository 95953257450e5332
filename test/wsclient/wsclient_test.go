package wsclient

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// fakeNode is a WebSocket server whose n-th connection (from 0) is served
// by serve[n]; it stands in for a node so that the client's own checks can
// be shown to fail on a wrong server.
func fakeNode(t *testing.T, serve ...func(ws *websocket.Conn, r *http.Request)) string {
	t.Helper()
	conns := make(chan int, len(serve))
	for i := range serve {
		conns <- i
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var i int
		select {
		case i = <-conns:
		default:
			http.Error(w, "no more connections", http.StatusServiceUnavailable)
			return
		}
		ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		serve[i](ws, r)
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws"
}

func write(t *testing.T, ws *websocket.Conn, frames ...string) {
	for _, f := range frames {
		if err := ws.WriteMessage(websocket.TextMessage, []byte(f)); err != nil {
			t.Errorf("server write: %v", err)
		}
	}
}

// read returns the seqs of the next n client frames.
func read(t *testing.T, ws *websocket.Conn, n int) []int64 {
	var seqs []int64
	for range n {
		_, b, err := ws.ReadMessage()
		if err != nil {
			t.Errorf("server read: %v", err)
			return seqs
		}
		var f struct{ Seq int64 }
		if err := json.Unmarshal(b, &f); err != nil {
			t.Errorf("server read %q: %v", b, err)
		}
		seqs = append(seqs, f.Seq)
	}
	return seqs
}

const welcome = `{"type":"welcome","session":"s1","resumeToken":"t1","resumed":false}`

func TestNextChecksSeq(t *testing.T) {
	for _, tc := range []struct {
		name   string
		frames []string
		err    string // of the last Next
	}{
		{"in order", []string{`{"type":"waiting","seq":1}`, `{"type":"chat","seq":2}`}, ""},
		{"gap", []string{`{"type":"waiting","seq":1}`, `{"type":"chat","seq":3}`}, "seq 3 after 1"},
		{"repeat", []string{`{"type":"waiting","seq":1}`, `{"type":"chat","seq":1}`}, "seq 1 after 1"},
		{"no seq", []string{`{"type":"waiting","seq":1}`, `{"type":"chat"}`}, "without integer seq"},
		{"not JSON", []string{`{"type":"waiting","seq":1}`, `{"type":`}, "bad server frame: not one JSON object"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := fakeNode(t, func(ws *websocket.Conn, _ *http.Request) {
				write(t, ws, append([]string{welcome}, tc.frames...)...)
				_, _, _ = ws.ReadMessage() // until the client goes
			})
			c, _, err := Dial(context.Background(), url, DialOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Release()
			if _, err := c.ReadWelcome(context.Background()); err != nil {
				t.Fatal(err)
			}
			if _, err := c.NextWithin(Timeout); err != nil {
				t.Fatal(err)
			}
			_, err = c.NextWithin(Timeout)
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("second frame: %v", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("second frame: error %v, want one with %q", err, tc.err)
			}
		})
	}
}

func TestCloseCode(t *testing.T) {
	url := fakeNode(t, func(ws *websocket.Conn, _ *http.Request) {
		write(t, ws, welcome)
		_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(4001, ""), time.Now().Add(time.Second))
	})
	c, _, err := Dial(context.Background(), url, DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Release()
	if _, err := c.ReadWelcome(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := c.NextWithin(Timeout); !errors.Is(err, ErrClosed) {
		t.Fatalf("after the close: %v, want ErrClosed", err)
	}
	if got := CloseCode(c.Err()); got != 4001 {
		t.Fatalf("close code %d (%v), want 4001", got, c.Err())
	}
}

// A resume asks for the frames after the last one taken, re-sends the
// frames after the welcome's lastSeq (also those sent while the socket was
// down) and checks the seq of what follows against the last taken.
func TestClientResume(t *testing.T) {
	gotQuery := make(chan string, 1)
	gotResent := make(chan []int64, 1)
	url := fakeNode(t,
		func(ws *websocket.Conn, _ *http.Request) {
			write(t, ws, welcome, `{"type":"waiting","seq":1}`, `{"type":"matched","seq":2}`)
			read(t, ws, 2)
			_ = ws.NetConn().Close()
		},
		func(ws *websocket.Conn, r *http.Request) {
			gotQuery <- r.URL.RawQuery
			// The server processed client frame 1 of 3; it re-sends frame 2,
			// which the client had queued but not taken.
			write(t, ws, `{"type":"welcome","session":"s1","resumeToken":"t2","resumed":true,"lastSeq":1}`,
				`{"type":"matched","seq":2}`, `{"type":"chat","seq":3}`)
			gotResent <- read(t, ws, 2)
			_, _, _ = ws.ReadMessage()
		},
	)
	c, err := Connect(context.Background(), url, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if f, err := c.Next(context.Background()); err != nil || f.Type() != "waiting" {
		t.Fatalf("first frame %v, %v", f, err)
	}
	for i := range 2 {
		if _, err := c.Send(map[string]any{"type": "chat", "text": "x"}); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	<-c.Conn().Done()
	if seq, err := c.Send(map[string]any{"type": "chat", "text": "while down"}); err != nil || seq != 3 {
		t.Fatalf("send while down: seq %d, %v", seq, err)
	}
	res, err := c.Resume(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	if q := <-gotQuery; q != "resume=t1&last=1" {
		t.Fatalf("resume query %q, want resume=t1&last=1", q)
	}
	if got := <-gotResent; len(got) != 2 || got[0] != 2 || got[1] != 3 {
		t.Fatalf("server got re-sent seqs %v, want [2 3]", got)
	}
	if len(res.Resent) != 2 || res.Resent[0] != 2 || res.Resent[1] != 3 {
		t.Fatalf("Resent %v, want [2 3]", res.Resent)
	}
	if c.Welcome().Str("resumeToken") != "t2" {
		t.Fatalf("welcome %s, want the resumed one", c.Welcome())
	}
	for _, typ := range []string{"matched", "chat"} {
		if f, err := c.Next(context.Background()); err != nil || f.Type() != typ {
			t.Fatalf("after the resume: %v, %v; want %s", f, err, typ)
		}
	}
}

func TestClientResumeRefused(t *testing.T) {
	url := fakeNode(t,
		func(ws *websocket.Conn, _ *http.Request) { write(t, ws, welcome); _, _, _ = ws.ReadMessage() },
		func(ws *websocket.Conn, _ *http.Request) {
			write(t, ws, `{"type":"welcome","session":"s2","resumeToken":"t3","resumed":false}`)
			_, _, _ = ws.ReadMessage()
		},
	)
	c, err := Connect(context.Background(), url, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Resume(context.Background(), url); err == nil || !strings.Contains(err.Error(), "resume refused") {
		t.Fatalf("resume into a fresh session: %v, want resume refused", err)
	}
}

func TestCallICEServers(t *testing.T) {
	welcome := Frame{"iceServers": []any{map[string]any{"urls": "stun:a"}}}
	matched := Frame{"iceServers": []any{
		map[string]any{"urls": []any{"stun:a"}},
		map[string]any{"urls": []any{"turn:b?transport=udp", "turn:b?transport=tcp"}, "username": "1:s", "credential": "c"},
	}}
	got, err := CallICEServers(matched, welcome)
	if err != nil || len(got) != 2 || got[1].Username != "1:s" || got[1].Credential != "c" || len(got[1].URLs) != 2 {
		t.Fatalf("1.1 matched: %+v, %v", got, err)
	}
	got, err = CallICEServers(Frame{"type": "matched"}, welcome)
	if err != nil || len(got) != 1 || got[0].URLs[0] != "stun:a" {
		t.Fatalf("1.0 matched falls back to welcome: %+v, %v", got, err)
	}
	if _, err := CallICEServers(Frame{"iceServers": "x"}, welcome); err == nil {
		t.Fatal("malformed iceServers: no error")
	}
	if _, err := CallICEServers(Frame{"iceServers": []any{map[string]any{"urls": 3}}}, welcome); err == nil {
		t.Fatal("urls not a string: no error")
	}
}
