// Package server is the composition root: it builds a node's parts from a
// Config — engine, signaling hub, TURN, HTTP handlers — and runs them until
// the context ends, then drains.
package server

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/strangerchat/stranger/internal/certs"
	"github.com/strangerchat/stranger/internal/clientip"
	"github.com/strangerchat/stranger/internal/clock"
	"github.com/strangerchat/stranger/internal/config"
	"github.com/strangerchat/stranger/internal/identity"
	"github.com/strangerchat/stranger/internal/ids"
	"github.com/strangerchat/stranger/internal/match"
	"github.com/strangerchat/stranger/internal/moderation"
	"github.com/strangerchat/stranger/internal/netpoll"
	"github.com/strangerchat/stranger/internal/protocol"
	"github.com/strangerchat/stranger/internal/redisnode"
	"github.com/strangerchat/stranger/internal/signaling"
	"github.com/strangerchat/stranger/internal/tlsmux"
	"github.com/strangerchat/stranger/internal/turnserver"
	"github.com/strangerchat/stranger/internal/web"
)

// engine is what the server needs of a backend beyond signaling.Engine.
type engine interface {
	signaling.Engine
	Stats() match.Stats
	Close()
}

// Server is one node.
type Server struct {
	cfg      config.Config
	log      *slog.Logger
	hub      *signaling.Hub
	engine   engine
	backend  *redisnode.Backend // nil on the in-memory engine
	registry *prometheus.Registry
	clock    clock.Clock

	moderation *moderation.Service
	live       *liveStats

	turn    *turnserver.Server
	creds   turnserver.Credentials
	tls     *tlsFront // nil: plain HTTP on --addr
	http    *http.Server
	admin   *http.Server
	ln      net.Listener
	adminLn net.Listener
	poller  *netpoll.Poller // nil where there is none: a goroutine per connection

	// cleanup undoes what New and Start built, in reverse order: Shutdown
	// runs it, and so do New and Start when they fail half-way.
	cleanup cleanup
}

// cleanup is a list of closers, run last first.
type cleanup []func(context.Context) error

func (c *cleanup) add(f func(context.Context) error) { *c = append(*c, f) }

// run calls every closer, last added first, and empties the list; it
// returns the closers' errors joined.
func (c *cleanup) run(ctx context.Context) error {
	list := *c
	*c = nil
	var errs []error
	for i := len(list) - 1; i >= 0; i-- {
		if err := list[i](ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// abandon undoes a New or Start that failed with err, within the shutdown
// timeout, and returns err.
func (s *Server) abandon(err error) error {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	if cerr := s.cleanup.run(ctx); cerr != nil {
		s.log.Warn("releasing a node that did not start", "err", cerr)
	}
	return err
}

// Options are the parts a test may replace.
type Options struct {
	Clock clock.Clock // default: the wall clock
}

// New builds a node from cfg; nothing listens or connects until Start.
func New(cfg config.Config, log *slog.Logger, opt Options) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid configuration: %w", err)
	}
	if opt.Clock == nil {
		opt.Clock = clock.Real{}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := signaling.NewMetrics(reg)

	s := &Server{cfg: cfg, log: log, registry: reg, clock: opt.Clock}
	s.creds = turnserver.Credentials{STUN: cfg.STUN, TURNURLs: cfg.TURNURLs, Secret: cfg.TURNSecret, TTL: cfg.TURNTTL}
	if p, err := netpoll.New(); err == nil {
		s.poller = p
		s.cleanup.add(func(context.Context) error { return p.Close() }) // after every connection is closed
	} else {
		log.Info("reading each connection with a goroutine of its own", "reason", err)
	}
	var cl signaling.Cluster
	if cfg.Redis != "" {
		b, err := redisnode.New(redisnode.Options{
			URL: cfg.Redis, Clock: opt.Clock, Log: log,
			InterestTimeout: cfg.InterestTimeout,
			MaxWaiting:      cfg.MaxWaiting,
			ResumeGrace:     cfg.ResumeGrace,
		})
		if err != nil {
			return nil, s.abandon(fmt.Errorf("--redis: %w", err))
		}
		s.backend, s.engine, cl = b, b.Engine, b.Cluster
		s.cleanup.add(func(context.Context) error { b.Close(); return nil })
	}
	octx, cancel := context.WithTimeout(context.Background(), storeOpenTimeout)
	defer cancel()
	store, err := s.openStore(octx)
	if err != nil {
		return nil, s.abandon(err)
	}
	key, err := s.deploymentKey(octx, store)
	if err != nil {
		return nil, s.abandon(err)
	}
	keyer, err := identity.NewKeyer(key)
	if err != nil {
		return nil, s.abandon(err)
	}
	s.moderation, err = s.newModeration(octx, store, reg, opt.Clock)
	if err != nil {
		return nil, s.abandon(err)
	}
	pw, err := newPow(cfg, s.backend, key)
	if err != nil {
		return nil, s.abandon(err)
	}
	hub := signaling.New(signaling.Options{
		Clock:      opt.Clock,
		Log:        log,
		Metrics:    metrics,
		Identify:   identify(keyer),
		Moderation: moderator{s.moderation},
		// Read at every welcome: Start fills in the embedded relay URLs.
		ICEServers:     func(id ids.SessionID, now time.Time) []protocol.ICEServer { return s.creds.ICEServers(string(id), now) },
		ResumeGrace:    cfg.ResumeGrace,
		PingInterval:   cfg.PingInterval,
		PongTimeout:    cfg.PongTimeout,
		AllowedOrigins: cfg.AllowedOrigins,
		MaxConnsPerIP:  cfg.MaxConnsPerIP,
		MaxSessions:    cfg.MaxSessions,
		MsgRate:        cfg.MsgRate,
		MsgBurst:       cfg.MsgBurst,
		Cluster:        cl,
		Poller:         s.poller,

		// Quotas (signaling/quota.go)
		ConnRate:        cfg.ConnRate,
		ConnBurst:       cfg.ConnBurst,
		MaxWaitingPerIP: cfg.MaxWaitingPerIP,
		NextRate:        cfg.NextRate,
		NextBurst:       cfg.NextBurst,
		ClientIP:        clientip.New(cfg.TrustedProxies, reg).IP,
		Pow:             pw,
	})
	s.hub = hub
	registerHubGauges(reg, hub)
	if s.engine == nil {
		m := match.NewMemory(match.MemoryConfig{
			Clock:           opt.Clock,
			InterestTimeout: cfg.InterestTimeout,
			MaxWaiting:      cfg.MaxWaiting,
			MaxBlocks:       cfg.MaxReportBlocks,
		}, hub)
		s.engine = m
		s.cleanup.add(func(context.Context) error { m.Close(); return nil })
	}
	hub.UseEngine(s.engine)
	registerEngineGauges(reg, s.engine)
	s.moderation.OnBan(hub.EndBanned)
	s.live = &liveStats{stats: s.engine.Stats, online: func() int {
		if cl != nil {
			return cl.Online()
		}
		return hub.Online()
	}}
	adminAPI := s.moderation.AdminAPI(s.live)

	mux := http.NewServeMux()
	mux.Handle("GET /ws", hub)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.HandleFunc("GET /api/online", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(map[string]int{"online": hub.Online()})
	})
	if cfg.PublicMetrics {
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	} else {
		// Not the web app's page either: a scraper pointed at the wrong
		// port should see that it is wrong.
		mux.Handle("/metrics", http.NotFoundHandler())
	}
	mux.Handle("POST /api/evidence", s.moderation.EvidenceHandler())
	if cfg.AdminToken != "" {
		// The console page (web.Handler serves it at /admin/) holds no
		// data; the API behind it needs the token.
		mux.Handle("/admin/api/", s.moderation.RequireToken(cfg.AdminToken, adminAPI, hub.Identity))
	} else {
		mux.Handle("/admin/", http.NotFoundHandler()) // the operator's pages are on the admin listener only
	}
	mux.Handle("/", web.Handler())
	var handler http.Handler = mux
	if cfg.TLS() {
		f, err := newTLSFront(cfg, log)
		if err != nil {
			return nil, s.abandon(err)
		}
		s.tls = f
		if f.closeStore != nil {
			s.cleanup.add(func(context.Context) error { return f.closeStore() }) // after ACME stops (added by Start)
		}
		handler = withHSTS(mux)
	}
	s.http = newHTTPServer(handler, publicTimeouts, cfg.HTTPIdleTimeout, log)

	if cfg.AdminAddr != "" {
		am := adminMux(reg)
		am.Handle("/admin/api/", adminAPI)
		console := web.ConsoleHandler()
		am.Handle("/admin/", console)
		am.Handle("/assets/", console)
		am.Handle("GET /favicon.png", console)
		s.admin = newHTTPServer(am, adminTimeouts, cfg.HTTPIdleTimeout, log)
	}
	return s, nil
}

// statser is implemented by engines that can count their queue and chats.
type statser interface{ Stats() match.Stats }

func registerEngineGauges(reg prometheus.Registerer, e any) {
	st, ok := e.(statser)
	if !ok {
		return
	}
	for _, m := range protocol.Modes {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "stranger_sessions_waiting", Help: "Sessions in the queue, by mode.",
			ConstLabels: prometheus.Labels{"mode": m.String()},
		}, func() float64 { return float64(st.Stats().Waiting[m]) }))
	}
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "stranger_chats_active", Help: "Chats in progress.",
	}, func() float64 { return float64(st.Stats().Chats) }))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "stranger_report_blocks", Help: "Report blocks held: reported pairs of sessions and of identities kept apart (--max-report-blocks caps the in-memory engine's).",
	}, func() float64 { return float64(st.Stats().Blocks) }))
}

// registerHubGauges exports what the hub counts that operators watch.
func registerHubGauges(reg prometheus.Registerer, hub *signaling.Hub) {
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "stranger_engine_retries_pending",
		Help: "Engine calls (end, connected, view repairs) being retried in the background; stays above 0 while Redis is slow or away.",
	}, func() float64 { return float64(hub.RetriesPending()) }))
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if s.hub.Draining() {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("draining\n"))
		return
	}
	if rd, ok := s.engine.(interface{ Ready(context.Context) error }); ok {
		if err := rd.Ready(r.Context()); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = fmt.Fprintf(w, "not ready: %v\n", err)
			return
		}
	}
	_, _ = w.Write([]byte("ready\n"))
}

// Start listens on the configured addresses and serves in the background.
// If it fails, everything New and Start built is released (listeners
// closed, goroutines ended, Redis left) and the Server cannot be used again.
func (s *Server) Start(ctx context.Context) error {
	// With --turn-tls-listen equal to --addr, HTTPS and TURN over TLS
	// share the port: the listener is opened first and split by the first
	// bytes of each connection.
	var ln net.Listener
	var shared *tlsmux.Mux
	if s.tls != nil && s.cfg.TURNListen != "" && s.cfg.TURNTLSListen == s.cfg.Addr {
		l, err := net.Listen("tcp", s.cfg.Addr)
		if err != nil {
			return s.abandon(fmt.Errorf("--addr %s: %w", s.cfg.Addr, err))
		}
		ln = l
		// "stun.turn" (RFC 7443) for TURN clients that ask for it by ALPN.
		shared = tlsmux.New(tls.NewListener(l, s.tls.config("http/1.1", "stun.turn")), 10*time.Second)
		s.cleanup.add(func(context.Context) error {
			if err := shared.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
				return err
			}
			return nil
		})
	}
	if s.cfg.TURNListen != "" {
		tc := s.cfg.TURNServer()
		tc.Sessions = s.hub // one node: the hub knows its sessions and their chats
		if s.backend != nil {
			tc.Sessions = s.backend.SessionRecords() // any node's session
		}
		switch {
		case shared != nil:
			tc.TLSListen, tc.TLSListener = "", shared.TURN()
		case s.tls != nil && tc.TLSListen != "":
			tc.TLS = s.tls.config()
		}
		t, err := turnserver.Start(ctx, tc, s.log)
		if err != nil {
			return s.abandon(fmt.Errorf("embedded TURN: %w", err))
		}
		s.turn = t
		s.cleanup.add(func(context.Context) error {
			if err := t.Close(); err != nil {
				s.log.Warn("closing embedded TURN", "err", err)
			}
			return nil
		})
		s.registry.MustRegister(t)
		if len(s.cfg.TURNURLs) == 0 {
			// Offer the embedded relay, on the ports it really got.
			turnsHost := ""
			if s.tls != nil {
				turnsHost = s.tls.turnsHost
			}
			tlsPort := t.TLSPort()
			if tlsPort > 0 && turnsHost == "" {
				s.log.Warn("TURN over TLS is on but the certificate names no host; not offering turns:")
				tlsPort = 0
			}
			s.creds.TURNURLs = turnserver.URLs(s.cfg.TURNPublicIP, t.Port(), turnsHost, tlsPort)
		}
	}
	if s.backend != nil {
		if err := s.refuseSharedRedisWithoutDatabase(ctx); err != nil {
			return s.abandon(err)
		}
		// Its Close is on the list since New.
		if err := s.backend.Start(ctx, s.hub); err != nil {
			return s.abandon(fmt.Errorf("--redis %s: %w", s.cfg.Redis, err))
		}
	}
	s.runModeration()
	s.runLiveStats()
	if ln == nil {
		l, err := net.Listen("tcp", s.cfg.Addr)
		if err != nil {
			return s.abandon(fmt.Errorf("--addr %s: %w", s.cfg.Addr, err))
		}
		ln = l
		s.cleanup.add(closeListener(ln))
	}
	s.ln = ln
	serveLn := ln
	switch {
	case shared != nil:
		serveLn = shared.HTTP()
	case s.tls != nil:
		// HTTP/1.1 only: the WebSocket upgrade needs it, and Go's HTTP/2
		// server would leave browsers a way to try WebSocket over HTTP/2.
		serveLn = tls.NewListener(ln, s.tls.config("http/1.1"))
	}
	var redirect *http.Server
	var redirectLn net.Listener
	if s.cfg.HTTPAddr != "" {
		rln, err := net.Listen("tcp", s.cfg.HTTPAddr)
		if err != nil {
			return s.abandon(fmt.Errorf("--http-addr %s: %w", s.cfg.HTTPAddr, err))
		}
		redirectLn = rln
		s.cleanup.add(closeListener(rln))
		h := redirectToHTTPS(s.tls.domains, ln.Addr().(*net.TCPAddr).Port)
		if s.tls.acme != nil {
			h = s.tls.acme.HTTPHandler(h)
		}
		redirect = newHTTPServer(h, redirectTimeouts, s.cfg.HTTPIdleTimeout, s.log)
	}
	if s.admin != nil {
		aln, err := net.Listen("tcp", s.cfg.AdminAddr)
		if err != nil {
			return s.abandon(fmt.Errorf("--admin-addr %s: %w", s.cfg.AdminAddr, err))
		}
		s.adminLn = aln
		s.cleanup.add(closeListener(aln))
	}

	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	hubDone := make(chan struct{})
	go func() {
		defer close(hubDone)
		s.hub.Run(runCtx)
	}()
	s.cleanup.add(func(context.Context) error {
		cancel()
		<-hubDone
		return nil
	})
	s.cleanup.add(serve(s.http, serveLn, s.log))
	if redirect != nil {
		s.cleanup.add(serve(redirect, redirectLn, s.log))
	}
	if s.admin != nil {
		s.cleanup.add(serve(s.admin, s.adminLn, s.log))
	}
	if s.tls != nil && s.tls.acme != nil {
		// After the listeners: the CA calls back on them. Obtaining runs
		// in the background (and retries) until Shutdown stops it.
		a := s.tls.acme
		if err := a.Manage(runCtx); err != nil {
			return s.abandon(err)
		}
		s.cleanup.add(func(context.Context) error { a.Stop(); return nil })
	}
	s.log.Info("serving", "addr", ln.Addr().String(), "tls", s.tls != nil, "http_redirect", s.cfg.HTTPAddr, "admin", s.AdminAddr(),
		"backend", s.backendName(), "turn", s.cfg.TURNListen, "turn_tls", s.cfg.TURNTLSListen)
	return nil
}

// closeListener is the closer of a listener that serve may have closed
// already.
func closeListener(ln net.Listener) func(context.Context) error {
	return func(context.Context) error {
		if err := ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			return err
		}
		return nil
	}
}

// serve runs srv on ln in the background; the closer it returns shuts srv
// down (waiting for its requests within ctx) and waits for it to return.
func serve(srv *http.Server, ln net.Listener, log *slog.Logger) func(context.Context) error {
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server stopped", "addr", ln.Addr().String(), "err", err)
		}
	}()
	return func(ctx context.Context) error {
		err := srv.Shutdown(ctx)
		<-done // Serve returns as soon as Shutdown closed the listener
		return err
	}
}

func (s *Server) backendName() string {
	if s.backend != nil {
		return "redis"
	}
	return "memory"
}

// TURNPort is the embedded TURN server's port (0 when off).
func (s *Server) TURNPort() int {
	if s.turn == nil {
		return 0
	}
	return s.turn.Port()
}

// TURNTLSPort is the embedded relay's TURN-over-TLS port (0 when off).
func (s *Server) TURNTLSPort() int {
	if s.turn == nil {
		return 0
	}
	return s.turn.TLSPort()
}

// Addr is the address the node listens on (useful with port 0).
func (s *Server) Addr() string {
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// AdminAddr is the admin listener's address, or "".
func (s *Server) AdminAddr() string {
	if s.adminLn == nil {
		return ""
	}
	return s.adminLn.Addr().String()
}

// Hub exposes the signaling hub (tests).
func (s *Server) Hub() *signaling.Hub { return s.hub }

// Engine exposes the engine (tests check its invariants).
func (s *Server) Engine() signaling.Engine { return s.engine }

// Shutdown drains: /readyz turns 503, the listener closes, open sockets are
// closed with 1012; then everything Start and New built is released, last
// first. It returns when done or when ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.hub.Drain()
	return s.cleanup.run(ctx)
}

// ReloadCertificates reads --tls-cert/--tls-key again; HTTPS and TURN over
// TLS use the new certificate from their next handshake. On an error the
// previous certificate stays.
func (s *Server) ReloadCertificates() error {
	if s.tls == nil {
		return errors.New("no TLS configured")
	}
	return s.tls.reload()
}

// Run starts the node and serves until ctx ends, then drains within
// cfg.ShutdownTimeout. With --tls-cert, SIGHUP reloads the certificate.
func Run(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	s, err := New(cfg, log, Options{})
	if err != nil {
		return err
	}
	if err := s.Start(ctx); err != nil {
		return err
	}
	if cfg.TLSCert != "" {
		certs.ReloadOnHUP(ctx, log, s.ReloadCertificates)
	}
	<-ctx.Done()
	log.Info("shutting down", "timeout", cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := s.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}

// NewLogger builds the slog logger of cfg.
func NewLogger(cfg config.Config, w interface{ Write([]byte) (int, error) }) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(cfg.LogLevel))
	o := &slog.HandlerOptions{Level: lvl}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, o))
	}
	return slog.New(slog.NewTextHandler(w, o))
}
