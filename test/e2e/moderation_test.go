//go:build e2e

package e2e

import (
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"
)

// asPerson serves the node through a reverse proxy that says the client is
// at addr (X-Forwarded-For), WebSocket included; the node trusts its
// loopback peer as a proxy. In the loopback-only namespace every browser
// page comes from 127.0.0.1, which is one person to the server: a report by
// one page against another on the same address bans both. Behind these
// proxies two pages are two people, as they are in production behind nginx.
func asPerson(t *testing.T, n *node, addr string) string {
	t.Helper()
	target, err := url.Parse(n.url)
	if err != nil {
		t.Fatal(err)
	}
	proxy := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(target)
		pr.Out.Host = pr.In.Host // the page's origin is this proxy's address
		// The node trusts its loopback peer (this proxy) and takes the
		// right-most address of the header that is not a trusted proxy.
		pr.Out.Header.Set("X-Forwarded-For", addr)
	}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: proxy, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String()
}

// TestReportBanFlow: a real video call; the reporter reports with a reason;
// the operator console (a third window, on the admin listener) shows the
// report with the picture the reporter's browser captured and the chat
// lines the server relayed; the moderator bans with one click; the banned
// person's page shows it at once. The console is also the subject of the
// README's screenshots (STRANGER_SCREENSHOTS=../../docs/screenshots).
func TestReportBanFlow(t *testing.T) {
	n := startNode(t, nodeOptions{admin: true, trustLoopbackProxy: true})
	br := sharedBrowser(t)
	a, b := br.landedPair(t, asPerson(t, n, "198.51.100.7"), asPerson(t, n, "198.51.100.66"))
	startAll(t, "start-video", a, b)
	waitPaired(t, a, b)
	a.waitVideoPlays()
	b.waitVideoPlays()
	chatBothWays(t, a, b, "1")

	// A reports B for harassment: a dialog with the reasons and a plain
	// notice of what goes to the operator.
	a.click("report")
	a.waitFor("the report dialog", jsTestID("report-dialog")+` !== null`, 5*time.Second)
	if notice := strings.ToLower(a.text("report-notice")); !strings.Contains(notice, "picture") || !strings.Contains(notice, "messages") {
		t.Errorf("the report dialog does not say that the picture and the messages go to the site's operators: %q", notice)
	}
	checkAxe(t, a, "report dialog")
	a.click("reason-harassment")
	a.click("report-confirm")
	b.waitText("status", textDisconnected, 10*time.Second)

	// The console, on the admin listener (no login there), shows it.
	c := br.newPage(t, "console", "http://"+n.srv.AdminAddr()+"/admin/")
	c.emulate(desktop)
	c.waitFor("a report in the queue", jsTestID("queue")+`?.children.length === 1`, 10*time.Second)
	c.click(eval[string](c, jsTestID("queue")+`.querySelector('[data-testid^="queue-"]').dataset.testid`))
	c.waitFor("the report's detail", jsTestID("report-detail")+` !== null`, 5*time.Second)
	c.waitFor("the evidence picture to load", jsTestID("evidence")+`?.complete && `+jsTestID("evidence")+`.naturalWidth > 0`, 10*time.Second)
	if w := eval[int](c, jsTestID("evidence")+`.naturalWidth`); w < 16 || w > 640 {
		t.Errorf("evidence picture %d px wide, want the partner's frame, at most 640", w)
	}
	transcript := c.text("transcript")
	for _, line := range []string{"hello from A 1", "hello from B 1"} {
		if !strings.Contains(transcript, line) {
			t.Errorf("the console's chat lines %q lack %q", transcript, line)
		}
	}
	if d := c.text("report-detail"); !strings.Contains(strings.ToLower(d), "harassment") {
		t.Errorf("the report's detail does not show its reason: %q", d)
	}
	checkAxe(t, c, "console")
	c.screenshot(desktop, "console-queue")

	// One click bans B; B's page, still open, shows it at once.
	start := time.Now()
	c.click("ban-24h")
	b.waitFor("the banned screen", jsTestID("banned")+` !== null`, 5*time.Second)
	t.Logf("ban clicked to banned screen: %v", time.Since(start).Round(time.Millisecond))
	if eval[bool](a, jsTestID("banned")+` !== null`) {
		t.Error("the reporter's page shows the banned screen too")
	}
	c.waitFor("the ban in the bans list", `document.querySelector('[data-testid^="ban-row-"]') !== null`, 10*time.Second)
	c.screenshot(desktop, "console-bans")
}
