package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/chromedp/chromedp"
)

// browserPage is the browser side of a call: the same exchange as the Go
// peer, in JavaScript against the browser's own RTCPeerConnection.
//
//go:embed peer.html
var browserPage []byte

// PageOrigin is where the page is served inside the peer's namespace; the
// node must allow it (--allowed-origins).
const PageOrigin = "http://127.0.0.1:8000"

// runBrowser drives headless Chromium at chromium through the call and
// returns what the page found.
func runBrowser(ctx context.Context, chromium, ws, name, interest string) (Result, error) {
	res := Result{Name: name}
	ln, err := net.Listen("tcp", "127.0.0.1:8000")
	if err != nil {
		return res, err
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(browserPage)
	})}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	dir, err := os.MkdirTemp("", "netsim-chromium-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	opts := append([]chromedp.ExecAllocatorOption{}, chromedp.DefaultExecAllocatorOptions[:]...)
	opts = append(opts,
		chromedp.ExecPath(chromium),
		chromedp.UserDataDir(dir),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		// The simulated internet's CA is the test's own; Chromium keeps its
		// own trust store (the Go peers trust the CA by SSL_CERT_FILE).
		chromedp.Flag("ignore-certificate-errors", true),
	)
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()
	q := url.Values{"ws": {ws}, "name": {name}, "interest": {interest}}
	if err := chromedp.Do(bctx, chromedp.Navigate(PageOrigin+"/?"+q.Encode())); err != nil {
		return res, fmt.Errorf("chromium: %w", err)
	}
	for {
		var state struct {
			Done   bool    `json:"done"`
			Result *Result `json:"result"`
			Error  string  `json:"error"`
			Step   string  `json:"step"`
		}
		raw, err := chromedp.Run(bctx, chromedp.Evaluate[string](`JSON.stringify({done: !!window.partnerDone, result: window.result || null, error: window.failure || "", step: window.step || ""})`))
		if err != nil {
			return res, fmt.Errorf("chromium: %w", err)
		}
		if err := json.Unmarshal([]byte(raw), &state); err != nil {
			return res, err
		}
		if state.Error != "" {
			return res, errors.New("page: " + state.Error)
		}
		if state.Result != nil && state.Done {
			state.Result.Name = name
			return *state.Result, nil
		}
		select {
		case <-ctx.Done():
			return res, fmt.Errorf("page at step %q: %w", state.Step, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}
