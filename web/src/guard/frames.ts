import type { FrameSource } from './guard';

/** The model's input size: frames are scaled to it before they leave the main thread. */
const size = 224;

const hasFrame = (v: HTMLVideoElement) => v.readyState >= HTMLMediaElement.HAVE_CURRENT_DATA && v.videoWidth > 0;

/** Resolves at the video's next presented frame (or its first data), or when aborted. */
function nextPresented(v: HTMLVideoElement, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    let handle = 0;
    const done = () => {
      if (handle) v.cancelVideoFrameCallback?.(handle);
      v.removeEventListener('loadeddata', done);
      signal.removeEventListener('abort', done);
      resolve();
    };
    if (typeof v.requestVideoFrameCallback === 'function') handle = v.requestVideoFrameCallback(done);
    v.addEventListener('loadeddata', done);
    signal.addEventListener('abort', done);
  });
}

/**
 * Frames of the remote <video>, scaled to 224×224 by createImageBitmap (the
 * browser's own scaler, not a canvas on the main thread); the bitmap is then
 * transferred to the worker.
 */
export class VideoFrames implements FrameSource<ImageBitmap> {
  constructor(private readonly video: HTMLVideoElement) {}

  async next(signal: AbortSignal): Promise<ImageBitmap | null> {
    while (!signal.aborted) {
      if (!hasFrame(this.video)) {
        await nextPresented(this.video, signal);
        continue;
      }
      try {
        return await createImageBitmap(this.video, { resizeWidth: size, resizeHeight: size, resizeQuality: 'low' });
      } catch {
        // The track ended or changed size between the check and the grab: wait for the next frame.
        await nextPresented(this.video, signal);
      }
    }
    return null;
  }
}
