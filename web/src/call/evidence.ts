// Evidence for a report (docs/protocol.md, 1.1 "Reports carry evidence"): the
// partner's video frame at the moment of the report, as a JPEG, uploaded once
// with the token of the server's `reported` answer.

/** The widest picture sent; larger frames are scaled down (aspect kept). */
export const EVIDENCE_MAX_WIDTH = 640;
/**
 * JPEG quality. Measured in Chromium: a 640x360 frame of its fake camera is
 * 6 KiB, pure noise 144 KiB at 640x360 and 191 KiB at 640x480, so a landscape
 * camera frame is always well under the server's 256 KiB.
 */
export const EVIDENCE_QUALITY = 0.8;
/** The second try for a frame over the limit at EVIDENCE_QUALITY (tall portrait frames of busy scenes). */
export const EVIDENCE_FALLBACK_QUALITY = 0.5;
/** The server's limit on the upload; a bigger picture is not sent. */
export const EVIDENCE_MAX_BYTES = 256 * 1024;

/** What the call controller needs; tests pass fakes. */
export interface Evidence {
  /**
   * Copies the stream's current frame at once (synchronously, while the call
   * is still up) and returns its JPEG encoding to come, or null when no frame
   * of the stream is shown.
   */
  capture(stream: MediaStream): Promise<Blob | null> | null;
  /** POST /api/evidence with the report's token; true when the server stored it. */
  upload(token: string, image: Blob): Promise<boolean>;
}

/** Size of the evidence picture for a frame of width x height. */
export function evidenceSize(width: number, height: number): { width: number; height: number } {
  if (width <= EVIDENCE_MAX_WIDTH) return { width, height };
  return { width: EVIDENCE_MAX_WIDTH, height: Math.max(1, Math.round((height * EVIDENCE_MAX_WIDTH) / width)) };
}

/**
 * The <video> element of the page that plays this stream and has a frame
 * decoded. The nudity guard blurs that element with CSS only; drawing the
 * element onto a canvas draws the decoded frame, not the blurred rendering,
 * which is what the operator needs to see.
 */
function playingElement(doc: Document, stream: MediaStream): HTMLVideoElement | null {
  for (const el of doc.querySelectorAll('video')) {
    if (el.srcObject === stream && el.readyState >= 2 && el.videoWidth > 0 && el.videoHeight > 0) return el;
  }
  return null;
}

/** The browser's capture and upload. */
export function browserEvidence(doc: Document = document, fetchFn: typeof fetch = fetch): Evidence {
  return {
    capture(stream) {
      if (stream.getVideoTracks().length === 0) return null;
      const video = playingElement(doc, stream);
      if (!video) return null;
      const { width, height } = evidenceSize(video.videoWidth, video.videoHeight);
      const canvas = doc.createElement('canvas');
      canvas.width = width;
      canvas.height = height;
      const g = canvas.getContext('2d');
      if (!g) return null;
      // Synchronous: the pixels are ours before the caller ends the call.
      g.drawImage(video, 0, 0, width, height);
      const encode = (quality: number) =>
        new Promise<Blob | null>((resolve) => canvas.toBlob(resolve, 'image/jpeg', quality));
      const fits = (b: Blob | null) => b !== null && b.size <= EVIDENCE_MAX_BYTES;
      return encode(EVIDENCE_QUALITY).then(async (b) => {
        if (fits(b)) return b;
        const smaller = await encode(EVIDENCE_FALLBACK_QUALITY);
        return fits(smaller) ? smaller : null;
      });
    },
    async upload(token, image) {
      try {
        const res = await fetchFn('/api/evidence', {
          method: 'POST',
          headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'image/jpeg' },
          body: image,
          credentials: 'omit',
        });
        return res.ok;
      } catch {
        return false;
      }
    },
  };
}
