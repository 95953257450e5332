package server

import (
	"log/slog"
	"net/http"
	"net/http/pprof"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// timeouts bound each phase of a request on one of the node's HTTP
// servers, so that no client holds a connection (and its goroutine and
// buffers) by being slow: the headers (slowloris), the body, the answer
// read by a client that does not read. Idle keep-alive connections are
// closed after --http-idle-timeout. A WebSocket is not bound by them:
// net/http clears the deadlines when the upgrade hijacks the connection,
// and internal/websocket keeps its own (pings, write and message
// timeouts).
type timeouts struct {
	readHeader, read, write time.Duration
}

var (
	// publicTimeouts: the largest request body is an evidence image of at
	// most 256 KiB (protocol.md), the largest answer the web app's assets.
	publicTimeouts = timeouts{readHeader: 10 * time.Second, read: time.Minute, write: time.Minute}
	// redirectTimeouts: ACME challenges and redirects are a few bytes.
	redirectTimeouts = timeouts{readHeader: 10 * time.Second, read: 10 * time.Second, write: 10 * time.Second}
	// adminTimeouts: a CPU profile or trace writes for as long as it was
	// asked to record, at most maxProfile.
	adminTimeouts = timeouts{readHeader: 10 * time.Second, read: 30 * time.Second, write: maxProfile + 30*time.Second}
)

// maxProfile is the longest CPU profile or execution trace the admin
// listener records (?seconds=).
const maxProfile = 2 * time.Minute

func newHTTPServer(h http.Handler, t timeouts, idle time.Duration, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: t.readHeader,
		ReadTimeout:       t.read,
		WriteTimeout:      t.write,
		IdleTimeout:       idle,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
}

// adminMux serves the admin listener: /metrics and pprof. Not
// /debug/pprof/cmdline: it printed the command line, secrets and all.
func adminMux(reg *prometheus.Registry) *http.ServeMux {
	am := http.NewServeMux()
	am.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	am.HandleFunc("/debug/pprof/", pprof.Index)
	am.Handle("/debug/pprof/profile", boundSeconds(http.HandlerFunc(pprof.Profile)))
	am.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	am.Handle("/debug/pprof/trace", boundSeconds(http.HandlerFunc(pprof.Trace)))
	return am
}

// boundSeconds refuses a profile or trace longer than maxProfile, which
// the admin server's write timeout would cut off.
func boundSeconds(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if v := r.FormValue("seconds"); v != "" {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil || !(n > 0 && n <= maxProfile.Seconds()) {
				http.Error(w, "seconds: want more than 0 and at most "+strconv.Itoa(int(maxProfile.Seconds())), http.StatusBadRequest)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}
