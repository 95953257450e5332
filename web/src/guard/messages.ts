import type { Scores } from './policy';

/** Where the worker finds what it loads: URLs on the node itself, hashed, cached for a year. */
export interface GuardAssets {
  /** The MobileNetV2 model's model.json (its weights file is named inside it). */
  modelUrl: string;
  /** The tfjs WASM binaries, by the file names tfjs asks for. */
  wasmPaths: Record<string, string>;
}

export type ToWorker =
  | ({ type: 'load' } & GuardAssets)
  | { type: 'classify'; id: number; frame: ImageBitmap };

export type FromWorker =
  | { type: 'ready'; backend: string; loadMs: number }
  | { type: 'failed'; message: string }
  | { type: 'verdict'; id: number; scores: Scores; inferMs: number }
  | { type: 'error'; id: number; message: string };
