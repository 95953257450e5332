// Proof of work (protocol 1.1): the server may ask a new session for an
// ALTCHA solution before its first join or next. PowGate keeps what the
// signaling client needs to give it without the person ever waiting on it:
// every challenge is solved as soon as it arrives (normally with the
// welcome, long before anyone clicks Start), and a join or next sent before
// the solution is ready waits only for the rest of it.

import type { PowChallenge } from './protocol';

/**
 * Solves a challenge; resolves to the payload to send (base64 of the
 * solution's JSON). An aborted signal stops the work (the promise may then
 * never settle).
 */
export type PowSolver = (challenge: PowChallenge, signal: AbortSignal) => Promise<string>;

/** What a join or next about to be sent should carry. */
export type PowAttach =
  | { kind: 'none' } // nothing owed
  | { kind: 'wait' } // owed and still solving: hold the frame
  | { kind: 'pow'; payload: string }; // attach this

export class PowGate {
  private owed = false;
  /** The solution of the latest challenge; null while solving. */
  private payload: string | null = null;
  /** Bumped by every new challenge, so a late answer to an old one is ignored. */
  private generation = 0;
  private retried = false;
  private disposed = false;
  /** Stops the solve in progress: a new challenge or dispose makes it useless. */
  private abort: AbortController | null = null;

  /** onReady runs when a solution a held frame waits for is ready. */
  constructor(
    private readonly solve: PowSolver,
    private readonly onReady: () => void,
  ) {}

  /** Every welcome: a challenge means the session owes a solution; none means it owes nothing. */
  welcome(challenge: PowChallenge | undefined): void {
    this.retried = false;
    if (challenge) {
      this.start(challenge);
    } else {
      this.owed = false;
      this.payload = null;
      this.generation++;
      this.stop();
    }
  }

  /**
   * The server answered pow_required. True (once per connection) when the
   * client should send its join or next again: the fresh challenge is being
   * solved and the resent frame will wait for it. False: give up and let the
   * error through.
   */
  refused(challenge: PowChallenge | undefined): boolean {
    if (this.retried || !challenge || this.disposed) return false;
    this.retried = true;
    this.start(challenge);
    return true;
  }

  /** For a join or next about to be sent. A payload handed out counts as spent. */
  attach(): PowAttach {
    if (!this.owed) return { kind: 'none' };
    if (this.payload === null) return { kind: 'wait' };
    const payload = this.payload;
    // Spent: the server accepts it once. If it refuses, refused() starts over.
    this.owed = false;
    this.payload = null;
    return { kind: 'pow', payload };
  }

  dispose(): void {
    this.disposed = true;
    this.generation++;
    this.stop();
  }

  private stop(): void {
    this.abort?.abort();
    this.abort = null;
  }

  private start(challenge: PowChallenge): void {
    this.stop();
    this.owed = true;
    this.payload = null;
    const gen = ++this.generation;
    const abort = new AbortController();
    this.abort = abort;
    const done = (payload: string): void => {
      if (gen !== this.generation || this.disposed) return;
      this.abort = null;
      this.payload = payload;
      this.onReady();
    };
    // A solver that fails (no worker, an impossible challenge) sends the
    // frame without a solution: the server's pow_required then says why.
    this.solve(challenge, abort.signal).then(done, () => done(''));
  }
}

/**
 * The browser's solver: altcha-lib's, in a Web Worker loaded only when a
 * challenge arrives, so the landing page's script does not grow and the
 * page stays responsive while it runs.
 */
export const workerSolver: PowSolver = (challenge, signal) =>
  new Promise<string>((resolve, reject) => {
    const worker = new Worker(new URL('./pow.worker.ts', import.meta.url), { type: 'module' });
    const finish = (): void => {
      worker.terminate();
      signal.removeEventListener('abort', onAbort);
    };
    const onAbort = (): void => {
      finish();
      reject(new Error('aborted'));
    };
    signal.addEventListener('abort', onAbort);
    worker.onmessage = (ev: MessageEvent<{ payload?: string; error?: string }>) => {
      finish();
      if (typeof ev.data.payload === 'string') resolve(ev.data.payload);
      else reject(new Error(ev.data.error ?? 'proof of work failed'));
    };
    worker.onerror = (ev) => {
      finish();
      reject(new Error(ev.message || 'proof of work worker failed'));
    };
    worker.postMessage(challenge);
  });
