// The connect-time floor: two RTCPeerConnections wired directly in one page,
// with the web client's camera constraints, each sending to the other. It
// times what any call must do — getUserMedia, offer/answer, ICE, DTLS, the
// first decoded frame — with no signaling server and no second page.
// firstFrame comes from firstframe.js, evaluated just before.
(async () => {
  const now = () => performance.now();
  const t0 = now();
  const stream = await navigator.mediaDevices.getUserMedia({
    audio: true,
    // The same as web/src/call/media.ts (videoConstraints): the floor must
    // ask for what the client asks for, or the two time different work.
    video: { width: { ideal: 640 }, height: { ideal: 480 }, frameRate: { ideal: 30 }, facingMode: 'user' },
  });
  const tGum = now();
  const cfg = { iceServers: [], bundlePolicy: 'max-bundle' };
  const a = new RTCPeerConnection(cfg);
  const b = new RTCPeerConnection(cfg);
  a.onicecandidate = (e) => e.candidate && b.addIceCandidate(e.candidate);
  b.onicecandidate = (e) => e.candidate && a.addIceCandidate(e.candidate);
  const clone = stream.clone();
  for (const t of stream.getTracks()) a.addTrack(t, stream);
  for (const t of clone.getTracks()) b.addTrack(t, clone);

  const fa = firstFrame(a);
  const fb = firstFrame(b);
  const connected = new Promise((resolve) => {
    const check = () => {
      const s = a.iceConnectionState;
      if (s === 'connected' || s === 'completed') resolve(now());
    };
    a.addEventListener('iceconnectionstatechange', check);
  });

  const tOffer = now();
  const offer = await a.createOffer();
  await a.setLocalDescription(offer);
  await b.setRemoteDescription(offer);
  const answer = await b.createAnswer();
  await b.setLocalDescription(answer);
  await a.setRemoteDescription(answer);
  const [ta, tb, tc] = await Promise.all([fa, fb, connected]);
  const tFrame = Math.max(ta, tb);
  a.close();
  b.close();
  for (const t of [...stream.getTracks(), ...clone.getTracks()]) t.stop();
  return {
    total: tFrame - t0,
    gum: tGum - t0,
    offerToConnected: tc - tOffer,
    offerToFrame: tFrame - tOffer,
  };
})()
