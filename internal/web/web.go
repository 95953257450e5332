// Package web serves the React client built into internal/web/dist by Vite
// (make web) and embedded in the binary.
package web

import (
	"embed"
	"io/fs"
	"net/http"
	"path"
	"strings"
)

//go:embed all:dist
var dist embed.FS

// Handler serves the embedded build.
func Handler() http.Handler {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err) // "dist" is embedded above; cannot fail
	}
	return NewHandler(sub)
}

// notBuilt is served at / by a binary built without the web client.
const notBuilt = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Stranger: web client not built</title>
<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;line-height:1.5}code{background:#eee;padding:.1rem .3rem}</style></head>
<body><h1>The web client is not built into this binary</h1>
<p>The signaling server is running (WebSocket at <code>/ws</code>), but this binary was built without the React app.</p>
<p>Build it with <code>make run</code> (builds the client and the binary, then serves), or <code>make web</code> followed by <code>make build</code>. It needs Node.js 20+ and npm.</p>
</body></html>
`

// NewHandler serves the SPA in fsys: files under assets/ are content-hashed
// and cached for a year; index.html is never cached; any other path that is
// not a file gets index.html, so client-side routes work.
func NewHandler(fsys fs.FS) http.Handler {
	files := http.FileServerFS(fsys)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		index, err := fs.ReadFile(fsys, "index.html")
		if err != nil {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Header().Set("Cache-Control", "no-cache")
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write([]byte(notBuilt))
			return
		}
		p := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
		if p != "" && p != "index.html" && !strings.HasPrefix(path.Base(p), ".") {
			if st, err := fs.Stat(fsys, p); err == nil && !st.IsDir() {
				if strings.HasPrefix(p, "assets/") {
					w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
				} else {
					w.Header().Set("Cache-Control", "no-cache")
				}
				files.ServeHTTP(w, r)
				return
			}
			if strings.HasPrefix(p, "assets/") {
				http.NotFound(w, r) // a missing hashed asset is a real 404
				return
			}
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = w.Write(index)
	})
}
