// Evaluated before floor.js and bare.js, so that the floor and the bare
// client time "first remote frame" the same way: firstFrame(pc) shows pc's
// remote tracks in a new <video> and resolves with the time
// (performance.now() scale) at which its first frame is presented.
// `var`, not `const`: a second evaluation in the same page must not throw.
var firstFrame = (pc) =>
  new Promise((resolve) => {
    const v = document.createElement('video');
    v.autoplay = true;
    v.playsInline = true;
    v.style.width = '640px';
    document.body.appendChild(v);
    const ms = new MediaStream();
    pc.ontrack = (e) => {
      ms.addTrack(e.track);
      if (v.srcObject !== ms) {
        v.srcObject = ms;
        v.requestVideoFrameCallback((t) => resolve(t));
        v.play().catch(() => {});
      }
    };
  });
