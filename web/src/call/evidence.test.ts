import { afterEach, describe, expect, it, vi } from 'vitest';
import { FakeMediaStream, FakeTrack } from '../test/fakes';
import { browserEvidence, EVIDENCE_MAX_WIDTH, evidenceSize } from './evidence';

afterEach(() => {
  document.body.innerHTML = '';
});

/** A <video> playing stream with a decoded frame of w x h (jsdom decodes nothing). */
function playing(stream: unknown, w: number, h: number): HTMLVideoElement {
  const el = document.createElement('video');
  el.srcObject = stream as MediaStream;
  Object.defineProperty(el, 'readyState', { value: 4 });
  Object.defineProperty(el, 'videoWidth', { value: w });
  Object.defineProperty(el, 'videoHeight', { value: h });
  document.body.append(el);
  return el;
}

describe('evidence', () => {
  it('scales to at most 640 px wide, keeping the aspect', () => {
    expect(evidenceSize(1280, 720)).toEqual({ width: EVIDENCE_MAX_WIDTH, height: 360 });
    expect(evidenceSize(320, 240)).toEqual({ width: 320, height: 240 });
  });

  it('draws the playing element of the stream at once, then encodes a JPEG at 0.8', async () => {
    const stream = new FakeMediaStream([new FakeTrack('video')]);
    document.body.append(document.createElement('video')); // another, empty one
    const el = playing(stream, 1280, 720);
    const drawn: unknown[][] = [];
    const sizes: [number, number][] = [];
    let toBlobArgs: unknown[] = [];
    const jpeg = new Blob([new Uint8Array(50_000)], { type: 'image/jpeg' });
    vi.spyOn(HTMLCanvasElement.prototype, 'getContext').mockImplementation(function (this: HTMLCanvasElement) {
      sizes.push([this.width, this.height]);
      return { drawImage: (...a: unknown[]) => drawn.push(a) } as unknown as CanvasRenderingContext2D;
    } as never);
    vi.spyOn(HTMLCanvasElement.prototype, 'toBlob').mockImplementation((cb, ...rest) => {
      toBlobArgs = rest;
      queueMicrotask(() => cb(jpeg));
    });
    const p = browserEvidence(document).capture(stream as unknown as MediaStream);
    // Before any await: the frame is copied while the call is still up.
    expect(drawn).toEqual([[el, 0, 0, 640, 360]]);
    expect(sizes).toEqual([[640, 360]]);
    expect(await p).toBe(jpeg);
    expect(toBlobArgs).toEqual(['image/jpeg', 0.8]);
  });

  it('no frame shown (no element, nothing decoded, no video track): nothing captured', () => {
    const ev = browserEvidence(document);
    const stream = new FakeMediaStream([new FakeTrack('video')]) as unknown as MediaStream;
    expect(ev.capture(stream)).toBeNull();
    const el = document.createElement('video');
    el.srcObject = stream;
    document.body.append(el); // readyState 0
    expect(ev.capture(stream)).toBeNull();
    const audioOnly = new FakeMediaStream([new FakeTrack('audio')]);
    playing(audioOnly, 640, 480);
    expect(ev.capture(audioOnly as unknown as MediaStream)).toBeNull();
  });

  it('a picture over 256 KiB is encoded again at a lower quality, and not sent if still too big', async () => {
    const stream = new FakeMediaStream([new FakeTrack('video')]);
    playing(stream, 640, 480);
    vi.spyOn(HTMLCanvasElement.prototype, 'getContext').mockReturnValue({
      drawImage: () => {},
    } as unknown as CanvasRenderingContext2D as never);
    const qualities: unknown[] = [];
    let sizes = [256 * 1024 + 1, 256 * 1024 + 1];
    vi.spyOn(HTMLCanvasElement.prototype, 'toBlob').mockImplementation((cb, _type, q) => {
      qualities.push(q);
      cb(new Blob([new Uint8Array(sizes[qualities.length - 1] ?? 0)]));
    });
    expect(await browserEvidence(document).capture(stream as unknown as MediaStream)).toBeNull();
    expect(qualities).toEqual([0.8, 0.5]);
    qualities.length = 0;
    sizes = [256 * 1024 + 1, 100_000];
    expect((await browserEvidence(document).capture(stream as unknown as MediaStream))?.size).toBe(100_000);
    expect(qualities).toEqual([0.8, 0.5]);
  });

  it('uploads with the token as Bearer and image/jpeg; false on a refusal or a network error', async () => {
    const calls: [string, RequestInit][] = [];
    let answer: () => Promise<Response> = async () => new Response(null, { status: 204 });
    const fetchFn = vi.fn(async (url: string, init: RequestInit) => {
      calls.push([url, init]);
      return answer();
    });
    const ev = browserEvidence(document, fetchFn as unknown as typeof fetch);
    const img = new Blob(['x'], { type: 'image/jpeg' });
    expect(await ev.upload('tok', img)).toBe(true);
    expect(calls[0]?.[0]).toBe('/api/evidence');
    expect(calls[0]?.[1]).toMatchObject({
      method: 'POST',
      headers: { Authorization: 'Bearer tok', 'Content-Type': 'image/jpeg' },
      body: img,
    });
    answer = async () => new Response('{"error":"used"}', { status: 401 });
    expect(await ev.upload('tok', img)).toBe(false);
    answer = () => Promise.reject(new TypeError('network'));
    expect(await ev.upload('tok', img)).toBe(false);
  });
});
