import type { Classifier } from './guard';
import type { FromWorker, GuardAssets, ToWorker } from './messages';
import type { Scores } from './policy';

/** The worker that holds the model; a separate chunk, fetched only when this is called. */
export function createGuardWorker(): Worker {
  return new Worker(new URL('./worker.ts', import.meta.url), { type: 'module', name: 'nudity-guard' });
}

interface Pending {
  resolve(s: Scores): void;
  reject(e: Error): void;
}

/**
 * The main thread's side of the guard worker: starts loading the model at
 * once (so that creating it while waiting in the queue is the prefetch) and
 * sends frames as transferred ImageBitmaps, so no pixel is copied on the
 * main thread.
 */
export class WorkerClassifier implements Classifier<ImageBitmap> {
  private readonly worker: Worker;
  private readonly loaded: Promise<void>;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private disposed = false;
  /** Facts for the debug handle: the tfjs backend in use and the load time. */
  backend = '';
  loadMs = 0;

  constructor(createWorker: () => Worker, assets: GuardAssets) {
    let loadedOk = () => {};
    let loadFailed = (_: Error) => {};
    this.loaded = new Promise<void>((resolve, reject) => {
      loadedOk = resolve;
      loadFailed = reject;
    });
    // Nobody may be waiting yet (no chat started); a failure is read later.
    this.loaded.catch(() => {});
    const fail = (err: Error) => {
      loadFailed(err);
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
    try {
      this.worker = createWorker();
    } catch (err) {
      // No module workers (an old browser, or jsdom): the guard says it is off.
      this.worker = { postMessage() {}, terminate() {} } as unknown as Worker;
      fail(err instanceof Error ? err : new Error(String(err)));
      return;
    }
    this.worker.onmessage = (e: MessageEvent<FromWorker>) => {
      const m = e.data;
      switch (m.type) {
        case 'ready':
          this.backend = m.backend;
          this.loadMs = m.loadMs;
          loadedOk();
          break;
        case 'failed':
          fail(new Error(m.message));
          break;
        case 'verdict':
          this.pending.get(m.id)?.resolve(m.scores);
          this.pending.delete(m.id);
          break;
        case 'error':
          this.pending.get(m.id)?.reject(new Error(m.message));
          this.pending.delete(m.id);
          break;
      }
    };
    // The worker's script or one of its imports failed to load.
    this.worker.onerror = (e) => {
      e.preventDefault();
      fail(new Error(e.message || 'guard worker failed'));
    };
    this.send({ type: 'load', ...assets });
  }

  ready(): Promise<void> {
    return this.loaded;
  }

  classify(frame: ImageBitmap): Promise<Scores> {
    if (this.disposed) {
      frame.close();
      return Promise.reject(new Error('guard disposed'));
    }
    const id = this.nextId++;
    return new Promise<Scores>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.send({ type: 'classify', id, frame }, [frame]);
    });
  }

  dispose(): void {
    this.disposed = true;
    this.worker.terminate();
    for (const p of this.pending.values()) p.reject(new Error('guard disposed'));
    this.pending.clear();
  }

  private send(m: ToWorker, transfer: Transferable[] = []): void {
    this.worker.postMessage(m, transfer);
  }
}
