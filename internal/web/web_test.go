package web

import (
	"bytes"
	"compress/gzip"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
)

func testFS() fstest.MapFS {
	return fstest.MapFS{
		".keep":                   {Data: []byte("placeholder")},
		"index.html":              {Data: []byte(`<!doctype html><html><body><div id="root"></div><script type="module" src="/assets/index-abc123.js"></script></body></html>`)},
		"favicon.svg":             {Data: []byte(`<svg xmlns="http://www.w3.org/2000/svg"></svg>`)},
		"assets/index-abc123.js":  {Data: []byte(`console.log("hi")`)},
		"assets/index-def456.css": {Data: []byte(`body{color:red}`)},
		"assets/font-1a2b.woff2":  {Data: []byte("wOF2fake")},
	}
}

func get(t *testing.T, h http.Handler, method, target string, hdr map[string]string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, res *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return string(b)
}

func TestAssetsAreImmutableWithTheirType(t *testing.T) {
	h := NewHandler(testFS())
	cases := []struct {
		path, ctype, body string
	}{
		{"/assets/index-abc123.js", "text/javascript; charset=utf-8", `console.log("hi")`},
		{"/assets/index-def456.css", "text/css; charset=utf-8", `body{color:red}`},
		{"/assets/font-1a2b.woff2", "font/woff2", "wOF2fake"},
	}
	for _, c := range cases {
		res := get(t, h, http.MethodGet, c.path, nil)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d", c.path, res.StatusCode)
		}
		if got := res.Header.Get("Content-Type"); got != c.ctype {
			t.Errorf("%s: Content-Type %q, want %q", c.path, got, c.ctype)
		}
		if got := res.Header.Get("Cache-Control"); got != "public, max-age=31536000, immutable" {
			t.Errorf("%s: Cache-Control %q", c.path, got)
		}
		if got := body(t, res); got != c.body {
			t.Errorf("%s: body %q", c.path, got)
		}
	}
}

func TestIndexIsRevalidated(t *testing.T) {
	h := NewHandler(testFS())
	for _, p := range []string{"/", "/index.html"} {
		res := get(t, h, http.MethodGet, p, nil)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d", p, res.StatusCode)
		}
		if got := res.Header.Get("Content-Type"); got != "text/html; charset=utf-8" {
			t.Errorf("%s: Content-Type %q", p, got)
		}
		if got := res.Header.Get("Cache-Control"); got != "no-cache" {
			t.Errorf("%s: Cache-Control %q, want no-cache", p, got)
		}
		if b := body(t, res); !strings.Contains(b, `<div id="root">`) {
			t.Errorf("%s: not the app's index.html: %q", p, b)
		}
		csp := res.Header.Get("Content-Security-Policy")
		if csp == "" {
			t.Errorf("%s: no Content-Security-Policy", p)
		}
		// Sockets and fetches to this origin only (issue 12): no ws: or
		// wss: to any host.
		var connect string
		for _, d := range strings.Split(csp, ";") {
			if f := strings.Fields(d); len(f) > 0 && f[0] == "connect-src" {
				connect = strings.Join(f[1:], " ")
			}
		}
		if connect != "'self'" {
			t.Errorf("%s: connect-src %q, want 'self' only", p, connect)
		}
	}
}

func TestClientRoutesGetIndex(t *testing.T) {
	h := NewHandler(testFS())
	for _, p := range []string{"/chat", "/chat/room/42", "/some/deep/route?x=1", "/../../etc/passwd"} {
		res := get(t, h, http.MethodGet, p, nil)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d", p, res.StatusCode)
		}
		if b := body(t, res); !strings.Contains(b, `<div id="root">`) {
			t.Errorf("%s: want index.html, got %q", p, b)
		}
		if got := res.Header.Get("Cache-Control"); got != "no-cache" {
			t.Errorf("%s: Cache-Control %q", p, got)
		}
	}
}

func TestMissingAssetIs404(t *testing.T) {
	h := NewHandler(testFS())
	res := get(t, h, http.MethodGet, "/assets/index-old999.js", nil)
	if res.StatusCode != http.StatusNotFound {
		t.Fatalf("status %d, want 404 (index.html would be parsed as a script)", res.StatusCode)
	}
}

func TestRootFilesAndDotfiles(t *testing.T) {
	h := NewHandler(testFS())
	res := get(t, h, http.MethodGet, "/favicon.svg", nil)
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "image/svg+xml" {
		t.Fatalf("favicon: status %d type %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	if got := res.Header.Get("Cache-Control"); got != "no-cache" {
		t.Errorf("favicon: Cache-Control %q (not hashed, so not immutable)", got)
	}
	// The go:embed placeholder is not part of the site.
	res = get(t, h, http.MethodGet, "/.keep", nil)
	if b := body(t, res); strings.Contains(b, "placeholder") {
		t.Errorf("/.keep served the placeholder file")
	}
}

func TestETagAndHead(t *testing.T) {
	h := NewHandler(testFS())
	res := get(t, h, http.MethodGet, "/", nil)
	etag := res.Header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag on index.html")
	}
	res = get(t, h, http.MethodGet, "/", map[string]string{"If-None-Match": etag})
	if res.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match: status %d, want 304", res.StatusCode)
	}
	res = get(t, h, http.MethodHead, "/assets/index-abc123.js", nil)
	if res.StatusCode != http.StatusOK || body(t, res) != "" {
		t.Errorf("HEAD: status %d", res.StatusCode)
	}
	res = get(t, h, http.MethodPost, "/", nil)
	if res.StatusCode != http.StatusMethodNotAllowed || res.Header.Get("Allow") == "" {
		t.Errorf("POST: status %d Allow %q", res.StatusCode, res.Header.Get("Allow"))
	}
}

func TestNotBuiltPage(t *testing.T) {
	// What a binary compiled before `npm run build` embeds: only the placeholder.
	h := NewHandler(fstest.MapFS{".keep": {Data: []byte("placeholder")}})
	for _, p := range []string{"/", "/chat"} {
		res := get(t, h, http.MethodGet, p, nil)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d, want 200 with instructions", p, res.StatusCode)
		}
		if got := res.Header.Get("Content-Type"); got != "text/html; charset=utf-8" {
			t.Errorf("%s: Content-Type %q", p, got)
		}
		b := body(t, res)
		for _, want := range []string{"make web", "make run", "npm run build"} {
			if !strings.Contains(b, want) {
				t.Errorf("%s: page does not mention %q", p, want)
			}
		}
	}
}

func TestEmbeddedHandlerServesSomething(t *testing.T) {
	// Whether or not the web client was built, / answers with HTML.
	res := get(t, Handler(), http.MethodGet, "/", nil)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d", res.StatusCode)
	}
	if got := res.Header.Get("Content-Type"); got != "text/html; charset=utf-8" {
		t.Errorf("Content-Type %q", got)
	}
}

func TestGzip(t *testing.T) {
	big := bytes.Repeat([]byte("function stranger(){return 42}\n"), 200)
	fsys := testFS()
	fsys["assets/big-9f9f.js"] = &fstest.MapFile{Data: big}
	h := NewHandler(fsys)

	res := get(t, h, http.MethodGet, "/assets/big-9f9f.js", map[string]string{"Accept-Encoding": "gzip, deflate, br"})
	if res.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("Content-Encoding %q, want gzip", res.Header.Get("Content-Encoding"))
	}
	if res.Header.Get("Vary") != "Accept-Encoding" {
		t.Errorf("Vary %q", res.Header.Get("Vary"))
	}
	zr, err := gzip.NewReader(res.Body)
	if err != nil {
		t.Fatalf("gzip reader: %v", err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("gunzip: %v", err)
	}
	if !bytes.Equal(plain, big) {
		t.Error("gunzipped body differs from the file")
	}
	gzTag := res.Header.Get("ETag")

	res = get(t, h, http.MethodGet, "/assets/big-9f9f.js", map[string]string{"Accept-Encoding": "gzip;q=0"})
	if res.Header.Get("Content-Encoding") != "" || body(t, res) != string(big) {
		t.Error("q=0 still got gzip")
	}
	if res.Header.Get("ETag") == gzTag {
		t.Error("the two encodings share an ETag")
	}

	// Tiny files are not worth compressing.
	res = get(t, h, http.MethodGet, "/assets/index-abc123.js", map[string]string{"Accept-Encoding": "gzip"})
	if res.Header.Get("Content-Encoding") != "" {
		t.Error("a 17-byte file was gzipped")
	}
}

// The nudity guard's worker, model and WASM runtime are served by the node
// itself, cached for a year, with the types the browser insists on.
func TestEmbeddedGuardAssets(t *testing.T) {
	if _, err := fs.Stat(dist, "dist/index.html"); err != nil {
		t.Skip("web client not built (make web)")
	}
	want := map[string]string{ // name pattern under assets/ -> Content-Type
		"worker-*.js":                    "text/javascript; charset=utf-8",
		"nsfw-mobilenet-v2-*.model.json": "application/json",
		"nsfw-mobilenet-v2-*.bin":        "application/octet-stream",
		"tfjs-backend-wasm-*.wasm":       "application/wasm",
	}
	entries, err := fs.ReadDir(dist, "dist/assets")
	if err != nil {
		t.Fatal(err)
	}
	h := Handler()
	for pattern, ctype := range want {
		found := false
		for _, e := range entries {
			if ok, _ := path.Match(pattern, e.Name()); !ok {
				continue
			}
			found = true
			res := get(t, h, http.MethodGet, "/assets/"+e.Name(), map[string]string{"Accept-Encoding": "gzip"})
			if res.StatusCode != http.StatusOK {
				t.Errorf("%s: status %d", e.Name(), res.StatusCode)
			}
			if got := res.Header.Get("Content-Type"); got != ctype {
				t.Errorf("%s: Content-Type %q, want %q", e.Name(), got, ctype)
			}
			if got := res.Header.Get("Cache-Control"); got != cacheImmutable {
				t.Errorf("%s: Cache-Control %q", e.Name(), got)
			}
		}
		if !found {
			t.Errorf("no assets/%s in the build", pattern)
		}
	}
}

func TestGzipIsMadeOnceUnderConcurrentRequests(t *testing.T) {
	big := bytes.Repeat([]byte("var guard = 'worker';\n"), 5000)
	fsys := testFS()
	fsys["assets/worker-1234.js"] = &fstest.MapFile{Data: big}
	h := NewHandler(fsys)
	var wg sync.WaitGroup
	tags := make([]string, 8)
	for i := range tags {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := get(t, h, http.MethodGet, "/assets/worker-1234.js", map[string]string{"Accept-Encoding": "gzip"})
			tags[i] = res.Header.Get("Content-Encoding") + " " + res.Header.Get("ETag")
		}()
	}
	wg.Wait()
	for _, tag := range tags {
		if tag != tags[0] || !strings.HasPrefix(tag, "gzip ") {
			t.Fatalf("responses differ or are not gzipped: %q", tags)
		}
	}
}

// A NAME.gz from the build is served as NAME's gzip encoding, and not as a
// file of its own.
func TestPrecompressedFromTheBuild(t *testing.T) {
	plain := bytes.Repeat([]byte("tensor "), 1000)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(plain)
	_ = zw.Close()
	fsys := testFS()
	fsys["assets/model-77aa.bin"] = &fstest.MapFile{Data: plain}
	fsys["assets/model-77aa.bin.gz"] = &fstest.MapFile{Data: gz.Bytes()}
	h := NewHandler(fsys)

	res := get(t, h, http.MethodGet, "/assets/model-77aa.bin", map[string]string{"Accept-Encoding": "gzip"})
	if res.Header.Get("Content-Encoding") != "gzip" || body(t, res) != gz.String() {
		t.Errorf("Content-Encoding %q: want the build's gzip file as the body", res.Header.Get("Content-Encoding"))
	}
	if got := res.Header.Get("Content-Type"); got != "application/octet-stream" {
		t.Errorf("Content-Type %q", got)
	}
	res = get(t, h, http.MethodGet, "/assets/model-77aa.bin", nil)
	if res.Header.Get("Content-Encoding") != "" || body(t, res) != string(plain) {
		t.Error("without Accept-Encoding the plain file must be served")
	}
	if res := get(t, h, http.MethodGet, "/assets/model-77aa.bin.gz", nil); res.StatusCode != http.StatusNotFound {
		t.Errorf("the .gz itself: status %d, want 404", res.StatusCode)
	}
}

func consoleFS() fstest.MapFS {
	fsys := testFS()
	fsys["admin/index.html"] = &fstest.MapFile{Data: []byte(`<!doctype html><html><body><div id="console"></div><script type="module" src="/assets/admin-77aa.js"></script></body></html>`)}
	fsys["assets/admin-77aa.js"] = &fstest.MapFile{Data: []byte(`console.log("console")`)}
	return fsys
}

func TestConsolePageAndItsRoutes(t *testing.T) {
	for name, h := range map[string]http.Handler{"app": NewHandler(consoleFS()), "console only": NewConsoleHandler(consoleFS())} {
		for _, p := range []string{"/admin", "/admin/", "/admin/reports/42", "/admin/index.html", "/admin/bans?x=1"} {
			res := get(t, h, http.MethodGet, p, nil)
			b := body(t, res)
			if res.StatusCode != http.StatusOK || !strings.Contains(b, `id="console"`) {
				t.Fatalf("%s %s: status %d, body %q: want the console page", name, p, res.StatusCode, b)
			}
			if got := res.Header.Get("Content-Security-Policy"); got != htmlCSP {
				t.Errorf("%s %s: CSP %q, want the app's", name, p, got)
			}
			if got := res.Header.Get("Cache-Control"); got != cacheRevalidate {
				t.Errorf("%s %s: Cache-Control %q", name, p, got)
			}
			if got := res.Header.Get("Permissions-Policy"); got != "camera=(), microphone=()" {
				t.Errorf("%s %s: Permissions-Policy %q: the console needs no camera", name, p, got)
			}
			if got := res.Header.Get("Referrer-Policy"); got != "no-referrer" {
				t.Errorf("%s %s: Referrer-Policy %q", name, p, got)
			}
		}
	}
}

func TestConsoleAPIIsNeverAPage(t *testing.T) {
	for name, h := range map[string]http.Handler{"app": NewHandler(consoleFS()), "console only": NewConsoleHandler(consoleFS())} {
		for _, c := range []struct{ method, path string }{
			{http.MethodGet, "/admin/api"},
			{http.MethodGet, "/admin/api/"},
			{http.MethodGet, "/admin/api/reports?status=open"},
			{http.MethodPost, "/admin/api/bans"},
			{http.MethodDelete, "/admin/api/bans/abcd"},
		} {
			res := get(t, h, c.method, c.path, nil)
			if res.StatusCode != http.StatusNotFound {
				t.Errorf("%s %s %s: status %d, want 404", name, c.method, c.path, res.StatusCode)
			}
			if b := body(t, res); strings.Contains(b, "<html") {
				t.Errorf("%s %s %s: served a page: %q", name, c.method, c.path, b)
			}
		}
	}
}

func TestAppKeepsItsRoutesBesideTheConsole(t *testing.T) {
	h := NewHandler(consoleFS())
	for _, p := range []string{"/", "/chat", "/administrator", "/adminx/y"} {
		res := get(t, h, http.MethodGet, p, nil)
		b := body(t, res)
		if res.StatusCode != http.StatusOK || !strings.Contains(b, `id="root"`) {
			t.Fatalf("%s: status %d, body %q: want the app", p, res.StatusCode, b)
		}
		if got := res.Header.Get("Permissions-Policy"); got != "camera=(self), microphone=(self)" {
			t.Errorf("%s: Permissions-Policy %q", p, got)
		}
	}
	res := get(t, h, http.MethodGet, "/assets/admin-77aa.js", nil)
	if res.StatusCode != http.StatusOK || res.Header.Get("Cache-Control") != cacheImmutable {
		t.Fatalf("console asset: status %d, cache %q", res.StatusCode, res.Header.Get("Cache-Control"))
	}
}

func TestConsoleOnlyServesNoApp(t *testing.T) {
	h := NewConsoleHandler(consoleFS())
	for _, p := range []string{"/", "/index.html", "/favicon.svg", "/chat"} {
		if res := get(t, h, http.MethodGet, p, nil); res.StatusCode != http.StatusNotFound {
			t.Errorf("%s: status %d, want 404 on the console-only handler", p, res.StatusCode)
		}
	}
	for _, p := range []string{"/assets/admin-77aa.js", "/assets/index-def456.css"} {
		if res := get(t, h, http.MethodGet, p, nil); res.StatusCode != http.StatusOK {
			t.Errorf("%s: status %d, want the asset", p, res.StatusCode)
		}
	}
}

func TestConsoleNotBuilt(t *testing.T) {
	// A build from before the console: /admin/ says how to build, never the app.
	res := get(t, NewHandler(testFS()), http.MethodGet, "/admin/", nil)
	if b := body(t, res); res.StatusCode != http.StatusOK || !strings.Contains(b, "make web") || strings.Contains(b, `id="root"`) {
		t.Fatalf("status %d, body %q", res.StatusCode, b)
	}
}

func TestEmbeddedConsole(t *testing.T) {
	if _, err := fs.Stat(dist, "dist/index.html"); err != nil {
		t.Skip("web client not built (make web)")
	}
	// The build has the console as a page of its own, whose scripts the
	// handler serves, and the app's page does not load them.
	res := get(t, Handler(), http.MethodGet, "/admin/", nil)
	page := body(t, res)
	if res.StatusCode != http.StatusOK || !strings.Contains(page, "moderation") {
		t.Fatalf("/admin/: status %d, body %q", res.StatusCode, page)
	}
	app := body(t, get(t, Handler(), http.MethodGet, "/", nil))
	scripts := 0
	for _, part := range strings.Split(page, `src="`)[1:] {
		src, _, _ := strings.Cut(part, `"`)
		if !strings.HasPrefix(src, "/assets/") {
			continue
		}
		scripts++
		if res := get(t, ConsoleHandler(), http.MethodGet, src, nil); res.StatusCode != http.StatusOK {
			t.Errorf("%s: status %d from the console handler", src, res.StatusCode)
		}
		if strings.Contains(app, src) {
			t.Errorf("the app's page loads the console's entry %s", src)
		}
	}
	if scripts == 0 {
		t.Errorf("no script in the console page %q", page)
	}
}
