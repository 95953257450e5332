import { SLOW_MS, SLOW_STREAK, initialState, reduce, wantsFrames, type GuardEvent, type GuardState, type Scores } from './policy';

/** Judges frames; implemented by the worker client (engine.ts), faked in tests. */
export interface Classifier<F> {
  /** Resolves once the model is loaded; rejects when it cannot be. */
  ready(): Promise<void>;
  /** Judges one frame, taking ownership of it (a bitmap is transferred, not copied). */
  classify(frame: F): Promise<Scores>;
}

/** The frames of one chat's remote video. */
export interface FrameSource<F> {
  /** The current frame, waiting for the first one to be decoded; null if aborted first. */
  next(signal: AbortSignal): Promise<F | null>;
}

export interface GuardOptions<F> {
  /** null when the viewer turned "Blur nudity" off: nothing is loaded or judged. */
  classifier: Classifier<F> | null;
  onState: (s: GuardState) => void;
  /** Called with every verdict and the time it took (for the debug handle). */
  onVerdict?: (scores: Scores, ms: number) => void;
  /** Time between the starts of two classifications; about two frames a second. */
  intervalMs?: number;
  /**
   * How long a chat's video may stay blurred waiting for its first verdict,
   * from its first frame, while the model is still loading: after that it
   * is shown with the "guard off" notice rather than hidden.
   */
  firstVerdictMs?: number;
  /**
   * A device that needs longer than this for a classification is too slow:
   * at once for the first frame of a chat (the video is waiting, blurred),
   * after SLOW_STREAK such frames in a row once it is shown.
   */
  slowMs?: number;
  now?: () => number;
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });

/**
 * Runs the policy for one viewer: per chat, samples the remote video (the
 * first frame at once, then every intervalMs), one classification in flight
 * at a time, and reports each state change. The classifier outlives chats,
 * so its model loads once per chat screen, while waiting in the queue.
 */
export class Guard<F> {
  private state: GuardState = initialState;
  // Sticky across chats: a model that failed to load is not retried for each stranger.
  private modelFailed = false;
  private chat: AbortController | null = null;
  private readonly intervalMs: number;
  private readonly firstVerdictMs: number;
  private readonly slowMs: number;
  private readonly now: () => number;

  constructor(private readonly o: GuardOptions<F>) {
    this.intervalMs = o.intervalMs ?? 500;
    this.firstVerdictMs = o.firstVerdictMs ?? 10_000;
    this.slowMs = o.slowMs ?? SLOW_MS;
    this.now = o.now ?? (() => performance.now());
    o.classifier?.ready().catch(() => {
      this.modelFailed = true;
      if (this.chat) this.dispatch({ type: 'model-failed' });
    });
  }

  getState(): GuardState {
    return this.state;
  }

  /** A new stranger: starts blurred (unless the guard is off) and judges source's frames. */
  startChat(source: FrameSource<F>): void {
    this.endChat();
    const chat = new AbortController();
    this.chat = chat;
    this.dispatch({ type: 'chat-started', enabled: this.o.classifier !== null, modelFailed: this.modelFailed });
    if (this.o.classifier && wantsFrames(this.state)) void this.run(this.o.classifier, source, chat.signal);
  }

  /** The chat ended: stop sampling. The state stays as it was until the next chat. */
  endChat(): void {
    this.chat?.abort();
    this.chat = null;
  }

  /** The viewer's "show anyway": shown, unjudged, for the rest of this chat. */
  showAnyway(): void {
    if (this.chat) this.dispatch({ type: 'show-anyway' });
  }

  private dispatch(e: GuardEvent): void {
    const next = reduce(this.state, e);
    if (next === this.state) return;
    this.state = next;
    this.o.onState(next);
  }

  private async run(c: Classifier<F>, source: FrameSource<F>, signal: AbortSignal): Promise<void> {
    let deadline: ReturnType<typeof setTimeout> | undefined;
    let slowInARow = 0;
    try {
      while (!signal.aborted && wantsFrames(this.state)) {
        const started = this.now();
        const frame = await source.next(signal);
        if (frame === null || signal.aborted) return;
        if (deadline === undefined) {
          deadline = setTimeout(() => {
            if (!signal.aborted && this.state.kind === 'pending') this.dispatch({ type: 'too-slow' });
          }, this.firstVerdictMs);
        }
        try {
          await c.ready();
        } catch {
          return; // the constructor's handler turns the guard off
        }
        if (signal.aborted || !wantsFrames(this.state)) return;
        const t0 = this.now();
        // A blurred video waiting for a device that cannot judge a frame a
        // second is shown as soon as that is clear, not when the late
        // verdict arrives.
        const slow = setTimeout(() => {
          if (!signal.aborted && this.state.kind === 'pending') this.dispatch({ type: 'too-slow' });
        }, this.slowMs);
        let scores: Scores;
        try {
          scores = await c.classify(frame);
        } catch {
          // The worker died or the runtime broke mid-chat: show, with the notice.
          if (!signal.aborted) this.dispatch({ type: 'model-failed' });
          return;
        } finally {
          clearTimeout(slow);
        }
        const ms = this.now() - t0;
        if (signal.aborted) return;
        // (The state may be off by now, if this frame was too slow; the
        // policy still blurs on an unsafe verdict.)
        clearTimeout(deadline);
        this.o.onVerdict?.(scores, ms);
        this.dispatch({ type: 'verdict', scores });
        slowInARow = ms > this.slowMs ? slowInARow + 1 : 0;
        if (slowInARow >= SLOW_STREAK) this.dispatch({ type: 'too-slow' });
        const wait = started + this.intervalMs - this.now();
        if (wait > 0) await sleep(wait, signal);
      }
    } finally {
      clearTimeout(deadline);
    }
  }
}
