// A bare signaling client: the smallest page that makes a call through the
// server the way the web client does (join, camera, one RTCPeerConnection,
// offer/answer and candidates relayed as `signal`), without React or any UI
// beyond one <video>. The connect-time benchmark runs it in two pages to split
// the app's time into what two pages and the server cost anyway and what the
// app adds on top.
//
// Evaluated once per page to connect; window.__bare.start() then joins and
// resolves with timings (ms since the start) when the first remote frame shows.
// firstFrame comes from firstframe.js, evaluated just before.
(() => {
  if (window.__bare) return window.__bare.ready;
  const now = () => performance.now();
  let ws;
  let seq = 0;
  let iceServers = [];
  const send = (m) => ws.send(JSON.stringify({ ...m, seq: ++seq }));
  const handlers = [];
  const ready = new Promise((resolve, reject) => {
    ws = new WebSocket(location.origin.replace(/^http/, 'ws') + '/ws');
    ws.onerror = () => reject(new Error('socket error'));
    ws.onmessage = (ev) => {
      const m = JSON.parse(ev.data);
      if (m.type === 'welcome') {
        iceServers = m.iceServers || [];
        resolve(true);
        return;
      }
      for (const h of handlers) h(m);
    };
  });

  const start = () =>
    new Promise((resolve, reject) => {
      const t0 = now();
      const out = { matched: 0, gum: 0, offerOrAnswer: 0, connected: 0, frame: 0 };
      send({ type: 'join', mode: 'video' });
      const pc = new RTCPeerConnection({ iceServers, bundlePolicy: 'max-bundle', iceCandidatePoolSize: 1 });
      let room = null;
      let initiator = false;
      const held = [];
      // The same constraints as web/src/call/media.ts (and floor.js).
      const gum = navigator.mediaDevices
        .getUserMedia({
          audio: true,
          video: { width: { ideal: 640 }, height: { ideal: 480 }, frameRate: { ideal: 30 }, facingMode: 'user' },
        })
        .then((s) => {
          out.gum = now() - t0;
          return s;
        });
      const attach = () =>
        gum.then((s) => {
          for (const t of pc.getTransceivers()) {
            const kind = t.receiver.track && t.receiver.track.kind;
            const track = kind === 'audio' ? s.getAudioTracks()[0] : s.getVideoTracks()[0];
            if (track && !t.sender.track) t.sender.replaceTrack(track);
          }
        });
      firstFrame(pc).then((t) => {
        out.frame = t - t0;
        resolve(out);
      });
      pc.oniceconnectionstatechange = () => {
        const s = pc.iceConnectionState;
        if (!out.connected && (s === 'connected' || s === 'completed')) out.connected = now() - t0;
      };
      pc.onicecandidate = (e) => {
        if (room) send({ type: 'signal', room, data: { candidate: e.candidate ? e.candidate.toJSON() : null } });
      };
      const sendLocal = () => {
        out.offerOrAnswer = now() - t0;
        send({ type: 'signal', room, data: { sdp: { type: pc.localDescription.type, sdp: pc.localDescription.sdp } } });
      };
      handlers.push(async (m) => {
        try {
          if (m.type === 'matched') {
            out.matched = now() - t0;
            room = m.room;
            initiator = m.initiator;
            // Protocol 1.1: TURN credentials come with the match (as the app does).
            if (m.iceServers) pc.setConfiguration({ ...pc.getConfiguration(), iceServers: m.iceServers });
            if (initiator) {
              pc.addTransceiver('audio', { direction: 'sendrecv' });
              pc.addTransceiver('video', { direction: 'sendrecv' });
              await pc.setLocalDescription();
              sendLocal();
              attach();
            }
          } else if (m.type === 'signal' && m.room === room) {
            const d = m.data;
            if (d.sdp && d.sdp.type === 'offer' && !initiator) {
              await pc.setRemoteDescription(d.sdp);
              for (const c of held.splice(0)) pc.addIceCandidate(c);
              for (const t of pc.getTransceivers()) t.direction = 'sendrecv';
              await pc.setLocalDescription();
              sendLocal();
              attach();
            } else if (d.sdp && d.sdp.type === 'answer' && initiator) {
              await pc.setRemoteDescription(d.sdp);
              for (const c of held.splice(0)) pc.addIceCandidate(c);
            } else if (d.candidate) {
              if (pc.remoteDescription) pc.addIceCandidate(d.candidate);
              else held.push(d.candidate);
            }
          }
        } catch (err) {
          reject(err);
        }
      });
    });
  window.__bare = { ready, start };
  return ready;
})()
