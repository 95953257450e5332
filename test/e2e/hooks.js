// Injected by the e2e tests into every page before the app's own scripts
// (Page.addScriptToEvaluateOnNewDocument). It only observes: it records the
// peer connections the app creates, the camera requests, the click on a start
// button and the first frame of every stream put on the remote video, so the
// tests can read getStats and timings without the app exposing its internals.
(() => {
  if (window.__e2e) return;
  const now = () => performance.timeOrigin + performance.now();
  // matchedAt and iceConnectedAt: the first of each since the page loaded.
  const e2e = { pcs: [], gum: [], clickAt: 0, frames: [], matchedAt: 0, iceConnectedAt: 0, media: [], cands: [], wire: [] };
  window.__e2e = e2e;

  // Timed calls (negotiation steps, permission queries) and the main thread's
  // long tasks, for the benchmark's timeline (STRANGER_BENCH_DEBUG only: the
  // harness sets __e2eTimings then, so measured runs wrap nothing more).
  const timings = window.__e2eTimings === true;
  e2e.calls = [];
  e2e.longTasks = [];
  const timed = (obj, name, label) => {
    const orig = obj && obj[name];
    if (!timings || typeof orig !== 'function') return;
    obj[name] = function (...args) {
      const rec = { what: label || name, at: now(), doneAt: 0 };
      if (e2e.calls.length < 200) e2e.calls.push(rec);
      const r = orig.apply(this, args);
      if (r && typeof r.then === 'function') {
        r.then(
          () => (rec.doneAt = now()),
          () => (rec.doneAt = now()),
        );
      } else {
        rec.doneAt = now();
      }
      return r;
    };
  };
  if (timings) {
    try {
      new PerformanceObserver((list) => {
        for (const en of list.getEntries()) {
          if (e2e.longTasks.length < 200) e2e.longTasks.push({ at: performance.timeOrigin + en.startTime, ms: en.duration });
        }
      }).observe({ type: 'longtask', buffered: true });
    } catch {
      /* no longtask timing */
    }
  }

  const OrigPC = window.RTCPeerConnection;
  if (OrigPC) {
    for (const m of ['createOffer', 'createAnswer', 'setLocalDescription', 'setRemoteDescription', 'addIceCandidate']) {
      timed(OrigPC.prototype, m);
    }
    if (window.RTCRtpSender) timed(RTCRtpSender.prototype, 'replaceTrack');
    if (navigator.permissions) timed(Object.getPrototypeOf(navigator.permissions), 'query', 'permissions.query');
    window.RTCPeerConnection = class extends OrigPC {
      constructor(...args) {
        super(...args);
        e2e.pcs.push(this);
        // Local candidates as gathered (an mDNS ".local" name or an address).
        this.addEventListener('icecandidate', (ev) => {
          if (ev.candidate) e2e.cands.push({ at: now(), c: ev.candidate.candidate });
        });
        this.addEventListener('iceconnectionstatechange', () => {
          const s = this.iceConnectionState;
          if (!e2e.iceConnectedAt && (s === 'connected' || s === 'completed')) {
            e2e.iceConnectedAt = now();
          }
        });
      }
    };
  }

  // The signaling frames of a call, for the benchmark's timeline.
  const note = (dir, raw) => {
    if (e2e.wire.length > 200) return;
    try {
      const m = JSON.parse(raw);
      if (m.type !== 'signal' && m.type !== 'matched' && m.type !== 'join') return;
      const d = m.data || {};
      const what = m.type === 'signal' ? (d.sdp ? d.sdp.type : d.candidate ? 'cand' : 'end') : m.type;
      e2e.wire.push({ at: now(), dir, what });
    } catch {
      /* not JSON */
    }
  };
  const OrigWS = window.WebSocket;
  if (OrigWS) {
    window.WebSocket = class extends OrigWS {
      constructor(...args) {
        super(...args);
        this.addEventListener('message', (ev) => {
          if (typeof ev.data === 'string') note('in', ev.data);
          if (!e2e.matchedAt && typeof ev.data === 'string' && /"type"\s*:\s*"matched"/.test(ev.data)) {
            e2e.matchedAt = now();
          }
        });
      }
      send(data) {
        if (typeof data === 'string') note('out', data);
        return super.send(data);
      }
    };
  }

  // The camera streams the page got, for "are its tracks ended?" (not in
  // e2e.gum, which tests read as JSON).
  const streams = [];
  e2e.liveTracks = () => streams.flatMap((s) => s.getTracks()).filter((t) => t.readyState !== 'ended').length;
  e2e.tracks = () => streams.flatMap((s) => s.getTracks()).length;
  const md = navigator.mediaDevices;
  if (md && md.getUserMedia) {
    const orig = md.getUserMedia.bind(md);
    md.getUserMedia = (constraints) => {
      const rec = { at: now(), doneAt: 0, error: '' };
      e2e.gum.push(rec);
      return orig(constraints).then(
        (s) => {
          rec.doneAt = now();
          streams.push(s);
          return s;
        },
        (err) => {
          rec.doneAt = now();
          rec.error = String((err && err.name) || err);
          throw err;
        },
      );
    };
  }

  for (const type of ['loadedmetadata', 'playing', 'resize']) {
    document.addEventListener(
      type,
      (ev) => {
        const t = ev.target;
        if (t instanceof HTMLVideoElement && t.dataset.testid === 'remote-video') e2e.media.push({ at: now(), type });
      },
      true,
    );
  }

  // Counts restores from the back-forward cache (the page kept its state).
  window.addEventListener('pageshow', (ev) => {
    if (ev.persisted) e2e.bfcacheRestores = (e2e.bfcacheRestores || 0) + 1;
  });

  document.addEventListener(
    'click',
    (ev) => {
      const t = ev.target;
      if (t instanceof Element && t.closest('[data-testid="start-video"],[data-testid="start-text"]')) {
        e2e.clickAt = now();
      }
    },
    true,
  );

  // Resolves at the first remote frame shown: the connect-time benchmark
  // awaits it rather than polling the page, which would take CPU from the
  // call it times (the floor and the bare client poll nothing either).
  let firstFrameShown = () => {};
  e2e.firstFrameShown = new Promise((resolve) => {
    firstFrameShown = () => resolve(true);
  });

  // The app sets srcObject on the remote <video> when it is matched; the
  // first requestVideoFrameCallback after that is the first remote frame shown.
  const desc = Object.getOwnPropertyDescriptor(HTMLMediaElement.prototype, 'srcObject');
  if (desc && desc.set) {
    Object.defineProperty(HTMLMediaElement.prototype, 'srcObject', {
      configurable: true,
      enumerable: desc.enumerable,
      get() {
        return desc.get.call(this);
      },
      set(v) {
        desc.set.call(this, v);
        if (v && this.dataset && this.dataset.testid === 'remote-video' && this.requestVideoFrameCallback) {
          const rec = { setAt: now(), firstFrameAt: 0, width: 0 };
          e2e.frames.push(rec);
          this.requestVideoFrameCallback((t, meta) => {
            rec.firstFrameAt = performance.timeOrigin + t;
            rec.width = meta.width;
            firstFrameShown();
          });
        }
      },
    });
  }

  e2e.activePC = () => {
    const live = e2e.pcs.filter((p) => p.signalingState !== 'closed');
    return live.length ? live[live.length - 1] : null;
  };

  // What the tests assert on: decoded video frames and the selected pair.
  e2e.stats = async () => {
    const pc = e2e.activePC();
    const out = {
      pcs: e2e.pcs.length,
      livePCs: e2e.pcs.filter((p) => p.signalingState !== 'closed').length,
      framesDecoded: 0,
      ice: '',
      policy: '',
      localType: '',
      remoteType: '',
      localTypes: [],
      remoteTypes: [],
    };
    if (!pc) return out;
    out.ice = pc.iceConnectionState;
    out.policy = pc.getConfiguration().iceTransportPolicy || '';
    const r = await pc.getStats();
    let pair = null;
    const lt = new Set();
    const rt = new Set();
    r.forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'video') out.framesDecoded += s.framesDecoded || 0;
      if (s.type === 'transport' && s.selectedCandidatePairId) pair = r.get(s.selectedCandidatePairId) || null;
      if (s.type === 'local-candidate') lt.add(s.candidateType);
      if (s.type === 'remote-candidate') rt.add(s.candidateType);
    });
    if (pair) {
      const l = r.get(pair.localCandidateId);
      const rm = r.get(pair.remoteCandidateId);
      out.localType = (l && l.candidateType) || '';
      out.remoteType = (rm && rm.candidateType) || '';
    }
    out.localTypes = [...lt].sort();
    out.remoteTypes = [...rt].sort();
    return out;
  };
})();
