// URLs of what the guard worker loads. Importing this module fetches
// nothing: Vite turns each import into the hashed file's URL, and the build
// puts the files under assets/, which the node serves from the binary.
import modelUrl from 'virtual:nsfw-model';
import wasmPlain from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm?url';
import wasmSimd from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm?url';
import wasmThreaded from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-threaded-simd.wasm?url';
import type { GuardAssets } from './messages';

/** The worker resolves URLs against its own (under assets/): these are absolute. */
export function guardAssets(): GuardAssets {
  return {
    modelUrl: new URL(modelUrl, location.href).href,
    wasmPaths: {
      'tfjs-backend-wasm.wasm': new URL(wasmPlain, location.href).href,
      'tfjs-backend-wasm-simd.wasm': new URL(wasmSimd, location.href).href,
      // Never fetched (the worker turns threads off: they need cross-origin
      // isolation), but setWasmPaths refuses a map without it.
      'tfjs-backend-wasm-threaded-simd.wasm': new URL(wasmThreaded, location.href).href,
    },
  };
}
