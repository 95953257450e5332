// The nudity guard's model, in a dedicated worker: loading tfjs and the
// model, and every classification, happen off the page's main thread, and no
// frame leaves the device.
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { NSFWJS } from 'nsfwjs/core';
import type { FromWorker, GuardAssets, ToWorker } from './messages';
import type { Scores } from './policy';

let model: NSFWJS | null = null;
let canvas: OffscreenCanvasRenderingContext2D | null = null;

const post = (m: FromWorker) => self.postMessage(m);

// A GPU's WebGL (through OffscreenCanvas) where the device has one, WASM
// otherwise. A software WebGL (SwiftShader, llvmpipe: what a machine without
// a GPU gets) is skipped: compiling the model's shaders there took 18 s in a
// headless Chromium, WASM loads in a fraction of that. Never the plain-JS
// CPU backend: seconds per frame, the guard would only ever say "too slow".
// Chromium gives its SwiftShader WebGL even with failIfMajorPerformanceCaveat,
// so the renderer's name decides.
const softwareRenderer = /swiftshader|llvmpipe|softpipe|software|basic render/i;

function hasGpuWebGL(): boolean {
  try {
    const gl = new OffscreenCanvas(1, 1).getContext('webgl2', { failIfMajorPerformanceCaveat: true });
    if (!gl) return false;
    const info = gl.getExtension('WEBGL_debug_renderer_info');
    const renderer = String(gl.getParameter(info ? info.UNMASKED_RENDERER_WEBGL : gl.RENDERER));
    gl.getExtension('WEBGL_lose_context')?.loseContext();
    return !softwareRenderer.test(renderer);
  } catch {
    return false;
  }
}

async function pickBackend(): Promise<string> {
  for (const name of hasGpuWebGL() ? ['webgl', 'wasm'] : ['wasm']) {
    try {
      if (await tf.setBackend(name)) {
        await tf.ready();
        return name;
      }
    } catch {
      /* try the next one */
    }
  }
  throw new Error('neither WebGL nor WebAssembly is available');
}

async function load(a: GuardAssets): Promise<void> {
  const t0 = performance.now();
  try {
    // The threaded WASM build needs cross-origin isolation, which the page
    // does not have; the SIMD build is picked where the browser supports it.
    tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
    setWasmPaths(a.wasmPaths);
    const backend = await pickBackend();
    const net = new NSFWJS(a.modelUrl, { size: 224 });
    await net.load(); // also runs the model once, so the first real frame is not the slow one
    model = net;
    post({ type: 'ready', backend, loadMs: performance.now() - t0 });
  } catch (err) {
    post({ type: 'failed', message: err instanceof Error ? err.message : String(err) });
  }
}

const classNames: Record<string, keyof Scores> = {
  Drawing: 'drawing',
  Hentai: 'hentai',
  Neutral: 'neutral',
  Porn: 'porn',
  Sexy: 'sexy',
};

async function classify(id: number, frame: ImageBitmap): Promise<void> {
  const t0 = performance.now();
  try {
    if (!model) throw new Error('model not loaded');
    // Read the pixels through one canvas kept for the purpose (fromPixels
    // would make a new one per frame, and warn about repeated readbacks).
    canvas ??= new OffscreenCanvas(frame.width, frame.height).getContext('2d', { willReadFrequently: true });
    if (!canvas) throw new Error('no 2D canvas in the worker');
    if (canvas.canvas.width !== frame.width || canvas.canvas.height !== frame.height) {
      canvas.canvas.width = frame.width;
      canvas.canvas.height = frame.height;
    }
    canvas.drawImage(frame, 0, 0);
    frame.close();
    const pixels = tf.browser.fromPixels(canvas.getImageData(0, 0, canvas.canvas.width, canvas.canvas.height));
    let preds;
    try {
      preds = await model.classify(pixels, 5);
    } finally {
      pixels.dispose();
    }
    const scores: Scores = { drawing: 0, hentai: 0, neutral: 0, porn: 0, sexy: 0 };
    for (const p of preds) {
      const k = classNames[p.className];
      if (k) scores[k] = p.probability;
    }
    post({ type: 'verdict', id, scores, inferMs: performance.now() - t0 });
  } catch (err) {
    frame.close(); // a second close is harmless
    post({ type: 'error', id, message: err instanceof Error ? err.message : String(err) });
  }
}

self.onmessage = (e: MessageEvent<ToWorker>) => {
  const m = e.data;
  if (m.type === 'load') void load(m);
  else if (m.type === 'classify') void classify(m.id, m.frame);
};
