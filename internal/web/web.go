// Package web serves the browser client: the single-page app that web/ builds
// into dist/ and that this package embeds into the binary, and the operator's
// console, a second page of the same build (admin/index.html).
package web

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"
)

// dist is filled by `cd web && npm run build`. It always holds at least
// dist/.keep, because go:embed refuses a missing or empty directory.
//
//go:embed all:dist
var dist embed.FS

// Handler serves the embedded build of the web client.
func Handler() http.Handler {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		// fs.Sub fails only on an invalid path; "dist" is a constant.
		panic(fmt.Sprintf("web: %v", err))
	}
	return NewHandler(sub)
}

// ConsoleHandler serves the embedded operator console alone, for the admin
// listener: /admin/ and its client routes, and the assets and icon the
// console loads.
func ConsoleHandler() http.Handler {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(fmt.Sprintf("web: %v", err))
	}
	return NewConsoleHandler(sub)
}

// file is one asset, read once at start-up: the build never changes while the
// process runs.
type file struct {
	body        []byte
	contentType string
	etag        string

	// The gzip encoding comes from the build (NAME.gz) or is made on the
	// first request for the file, never at start-up: the nudity guard's
	// worker and model are megabytes that most visitors never fetch, and
	// every server start (each test's too) would pay for compressing them.
	gzOnce  sync.Once
	gzipped []byte // the compressed body when that saves at least a tenth, else nil
	gzEtag  string
}

type handler struct {
	files   map[string]*file // by clean path without the leading slash
	index   *file            // index.html, or the "not built" page
	console *file            // admin/index.html, or the "not built" page
	// consoleOnly: the admin listener's handler, which serves no app page.
	consoleOnly bool
}

// consolePrefix is where the operator console lives; consoleAPI under it is
// the operator API, served by the moderation service, never by this package.
const (
	consolePrefix = "admin"
	consoleAPI    = "admin/api"
	consoleIndex  = "admin/index.html"
)

const (
	cacheImmutable  = "public, max-age=31536000, immutable"
	cacheRevalidate = "no-cache"
	// The app talks only to its own origin (the /ws socket and /api), so
	// connect-src is 'self' alone: in CSP Level 3 browsers it covers ws: and
	// wss: of the same host, and a script injected into the page cannot
	// open a socket to another host to send what it reads there. Media
	// elements play MediaStreams. frame-ancestors stops clickjacking of a page
	// that holds camera permission. The nudity guard needs nothing more: its
	// module worker is a script of this origin (worker-src falls back to
	// script-src 'self'), and a worker is governed by the headers of its own
	// script, which carry no policy, so tfjs compiles its WebAssembly there
	// without 'wasm-unsafe-eval' on the page.
	htmlCSP = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; " +
		"img-src 'self' data: blob:; media-src 'self' blob: mediastream:; connect-src 'self'; " +
		"object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)

// The app needs the camera and microphone; the console never does.
const (
	appPermissions     = "camera=(self), microphone=(self)"
	consolePermissions = "camera=(), microphone=()"
)

// Extensions whose type must not depend on the host's /etc/mime.types.
var contentTypes = map[string]string{
	".html":        "text/html; charset=utf-8",
	".js":          "text/javascript; charset=utf-8",
	".mjs":         "text/javascript; charset=utf-8",
	".css":         "text/css; charset=utf-8",
	".json":        "application/json",
	".map":         "application/json",
	".svg":         "image/svg+xml",
	".png":         "image/png",
	".jpg":         "image/jpeg",
	".jpeg":        "image/jpeg",
	".webp":        "image/webp",
	".ico":         "image/x-icon",
	".woff2":       "font/woff2",
	".woff":        "font/woff",
	".txt":         "text/plain; charset=utf-8",
	".webmanifest": "application/manifest+json",
	".wasm":        "application/wasm", // compileStreaming refuses any other type
	".bin":         "application/octet-stream",
}

// notBuilt is served instead of the app by a binary built without `make web`.
const notBuilt = `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Stranger: web client not built</title>
<style>body{font:16px/1.5 system-ui,sans-serif;background:#0a0c11;color:#e8eaf0;max-width:40rem;margin:4rem auto;padding:0 1rem}
code{background:#1a1f2c;padding:.1rem .35rem;border-radius:4px}</style></head>
<body><h1>The web client is not built into this binary</h1>
<p>This Stranger server is running, but it was compiled before the browser app was built.</p>
<p>Build the app and the server together with <code>make web</code> and then rebuild the binary,
or run everything with <code>make run</code>. By hand: <code>cd web &amp;&amp; npm ci &amp;&amp; npm run build</code>,
then <code>go build ./cmd/stranger</code>.</p>
<p>The signaling endpoint <code>/ws</code> and the other APIs work without it.</p>
</body></html>
`

// NewHandler serves the single-page app held in fsys (the contents of the
// build directory: index.html, admin/index.html, assets/…). Hashed files under
// /assets/ are cached for a year; the pages are revalidated on every load so a
// deploy takes effect at once; /admin/ and any path under it but /admin/api/
// is the console's client route and gets admin/index.html; any other path that
// is not a file is the app's client route and gets index.html. Without a page
// it serves one that says how to build the client, never a bare 404.
func NewHandler(fsys fs.FS) http.Handler {
	return newHandler(fsys)
}

// NewConsoleHandler serves only the console held in fsys: /admin/ and its
// client routes, and /assets/ (the console's scripts and styles). Anything
// else is 404.
func NewConsoleHandler(fsys fs.FS) http.Handler {
	h := newHandler(fsys)
	h.consoleOnly = true
	return h
}

func newHandler(fsys fs.FS) *handler {
	h := &handler{files: map[string]*file{}}
	_ = fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil //nolint:nilerr // an unreadable entry is served as missing
		}
		if strings.HasPrefix(path.Base(p), ".") {
			return nil // .keep and other dotfiles are not part of the site
		}
		body, err := fs.ReadFile(fsys, p)
		if err != nil {
			return nil //nolint:nilerr // as above
		}
		h.files[p] = newFile(p, body)
		return nil
	})
	// The build writes NAME.gz beside each asset worth compressing: that is
	// NAME's gzip encoding, not a file of the site.
	for name, gz := range h.files {
		plain, ok := h.files[strings.TrimSuffix(name, ".gz")]
		if !strings.HasSuffix(name, ".gz") || !ok {
			continue
		}
		delete(h.files, name)
		plain.gzOnce.Do(func() {
			plain.gzipped = gz.body
			plain.gzEtag = strings.TrimSuffix(plain.etag, `"`) + `-gz"`
		})
	}
	if idx, ok := h.files["index.html"]; ok {
		h.index = idx
	} else {
		h.index = newFile("index.html", []byte(notBuilt))
	}
	if idx, ok := h.files[consoleIndex]; ok {
		h.console = idx
	} else {
		h.console = newFile("index.html", []byte(notBuilt))
	}
	return h
}

// underConsole reports whether a clean path (no leading slash) is the
// console's: admin itself or anything under admin/.
func underConsole(name string) bool {
	return name == consolePrefix || strings.HasPrefix(name, consolePrefix+"/")
}

func newFile(name string, body []byte) *file {
	sum := sha256.Sum256(body)
	ct, ok := contentTypes[strings.ToLower(path.Ext(name))]
	if !ok {
		ct = mime.TypeByExtension(path.Ext(name))
	}
	if ct == "" {
		ct = http.DetectContentType(body)
	}
	return &file{
		body:        body,
		contentType: ct,
		etag:        `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`,
	}
}

// gzip returns the gzip encoding of the body and its ETag, or nil when
// compression saves less than a tenth (scripts and styles shrink about 3x,
// the model's quantized weights by a fifth, images not at all).
func (f *file) gzip() ([]byte, string) {
	f.gzOnce.Do(func() {
		if gz := gzipBytes(f.body); gz != nil && len(gz) < len(f.body)-len(f.body)/10 {
			f.gzipped = gz
			f.gzEtag = strings.TrimSuffix(f.etag, `"`) + `-gz"`
		}
	})
	return f.gzipped, f.gzEtag
}

func gzipBytes(b []byte) []byte {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil
	}
	if _, err := zw.Write(b); err != nil {
		return nil
	}
	if err := zw.Close(); err != nil {
		return nil
	}
	return buf.Bytes()
}

// acceptsGzip reports whether the request's Accept-Encoding allows gzip
// (a plain "gzip" token without q=0; the only way browsers send it).
func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(name), "gzip") {
			q := strings.ReplaceAll(strings.TrimSpace(params), " ", "")
			return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
		}
	}
	return false
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
	if name == consoleAPI || strings.HasPrefix(name, consoleAPI+"/") {
		// The operator API is mounted beside this handler; a request that
		// reaches here has no API behind it (no moderation, or the public
		// listener without --admin-token): never a page in its place.
		w.Header().Set("Cache-Control", cacheRevalidate)
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")

	if underConsole(name) {
		// The console's own page and every client route under it; a page
		// always carries the policy, even asked for by its file name.
		servePage(w, r, h.console, consolePermissions)
		return
	}
	if h.consoleOnly && !strings.HasPrefix(name, "assets/") && name != "favicon.png" {
		http.NotFound(w, r)
		return
	}

	if f, ok := h.files[name]; ok && name != "index.html" {
		if strings.HasPrefix(name, "assets/") {
			// Vite puts a content hash in every name under assets/.
			w.Header().Set("Cache-Control", cacheImmutable)
		} else {
			w.Header().Set("Cache-Control", cacheRevalidate)
		}
		serve(w, r, f)
		return
	}
	if strings.HasPrefix(name, "assets/") {
		// A missing hashed asset is an old page asking for a file of a previous
		// deploy: index.html in its place would fail as a script or style anyway.
		w.Header().Set("Cache-Control", cacheRevalidate)
		http.NotFound(w, r)
		return
	}
	servePage(w, r, h.index, appPermissions)
}

// servePage serves an HTML page with the headers every page carries.
func servePage(w http.ResponseWriter, r *http.Request, page *file, permissions string) {
	w.Header().Set("Cache-Control", cacheRevalidate)
	w.Header().Set("Content-Security-Policy", htmlCSP)
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.Header().Set("Permissions-Policy", permissions)
	serve(w, r, page)
}

func serve(w http.ResponseWriter, r *http.Request, f *file) {
	w.Header().Set("Content-Type", f.contentType)
	body, etag := f.body, f.etag
	if gz, gzEtag := f.gzip(); gz != nil {
		w.Header().Add("Vary", "Accept-Encoding")
		if acceptsGzip(r) {
			body, etag = gz, gzEtag
			w.Header().Set("Content-Encoding", "gzip")
		}
	}
	w.Header().Set("ETag", etag)
	// ServeContent handles If-None-Match, Range and HEAD; the zero time means
	// no Last-Modified (embedded files have none).
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
}
