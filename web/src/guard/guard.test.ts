import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Guard, type Classifier, type FrameSource } from './guard';
import type { GuardState, Scores } from './policy';

const scores = (over: Partial<Scores>): Scores => ({ drawing: 0, hentai: 0, neutral: 0, porn: 0, sexy: 0, ...over });
const safe = scores({ neutral: 0.98, drawing: 0.02 });
const porn = scores({ porn: 0.9, sexy: 0.1 });

/** A classifier whose load and verdicts the test decides; each verdict takes `ms` of fake time. */
class FakeClassifier implements Classifier<number> {
  frames: number[] = [];
  verdicts: Scores[] = [];
  ms = 40;
  private settle: { ok(): void; fail(e: Error): void } = { ok() {}, fail() {} };
  private readonly loaded = new Promise<void>((ok, fail) => (this.settle = { ok, fail }));
  constructor() {
    this.loaded.catch(() => {});
  }
  load() {
    this.settle.ok();
  }
  failLoad() {
    this.settle.fail(new Error('model unavailable'));
  }
  ready() {
    return this.loaded;
  }
  /** How long each next classification takes; `ms` once these run out. */
  durations: number[] = [];
  classify(frame: number) {
    this.frames.push(frame);
    const v = this.verdicts.shift() ?? safe;
    const ms = this.durations.shift() ?? this.ms;
    return new Promise<Scores>((resolve) => setTimeout(() => resolve(v), ms));
  }
}

/** A video that has a frame at once; frames are numbered. */
const frames = (): FrameSource<number> => {
  let n = 0;
  return { next: async (signal) => (signal.aborted ? null : ++n) };
};

/** A video that never decodes a frame. */
const noFrames: FrameSource<number> = {
  next: (signal) => new Promise((resolve) => signal.addEventListener('abort', () => resolve(null))),
};

describe('Guard', () => {
  let seen: GuardState['kind'][];
  let c: FakeClassifier;
  const make = (classifier: Classifier<number> | null = c) =>
    new Guard<number>({ classifier, onState: (s) => seen.push(s.kind), now: () => Date.now() });

  beforeEach(() => {
    vi.useFakeTimers();
    seen = [];
    c = new FakeClassifier();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('starts blurred and shows the video after the first frame is judged safe', async () => {
    c.load();
    const g = make();
    g.startChat(frames());
    expect(g.getState().kind).toBe('pending');
    await vi.advanceTimersByTimeAsync(39);
    expect(g.getState().kind).toBe('pending');
    await vi.advanceTimersByTimeAsync(1);
    expect(g.getState().kind).toBe('shown');
    expect(c.frames).toEqual([1]);
  });

  it('judges about two frames a second, one at a time', async () => {
    c.load();
    const g = make();
    g.startChat(frames());
    await vi.advanceTimersByTimeAsync(1999); // frames at 0, 500, 1000, 1500
    expect(c.frames).toEqual([1, 2, 3, 4]);
    g.endChat();
    await vi.advanceTimersByTimeAsync(2000);
    expect(c.frames).toHaveLength(4);
  });

  it('never sends a frame while the last one is being judged', async () => {
    c.load();
    c.ms = 700; // slower than the interval, faster than the one-second limit
    const g = make();
    g.startChat(frames());
    await vi.advanceTimersByTimeAsync(1399);
    expect(c.frames).toEqual([1, 2]); // at 0 and 700, not at 500
    expect(g.getState().kind).toBe('shown');
    g.endChat();
  });

  it('waits for the model while blurred, then judges the frame', async () => {
    const g = make();
    g.startChat(frames());
    await vi.advanceTimersByTimeAsync(1000);
    expect(g.getState().kind).toBe('pending');
    expect(c.frames).toEqual([]);
    c.load();
    await vi.advanceTimersByTimeAsync(40);
    expect(g.getState().kind).toBe('shown');
  });

  it('blurs at once on an unsafe frame and stops judging; show anyway lasts for this chat only', async () => {
    c.load();
    c.verdicts = [safe, porn];
    const g = make();
    g.startChat(frames());
    await vi.advanceTimersByTimeAsync(540);
    expect(seen).toEqual(['shown', 'unsafe']);
    await vi.advanceTimersByTimeAsync(3000);
    expect(c.frames).toHaveLength(2);
    expect(g.getState().kind).toBe('unsafe');

    g.showAnyway();
    expect(g.getState().kind).toBe('shown-anyway');
    await vi.advanceTimersByTimeAsync(3000);
    expect(c.frames).toHaveLength(2); // the viewer chose: no more judging this chat

    // The next stranger starts blurred and is judged again.
    c.verdicts = [porn];
    g.startChat(frames());
    expect(g.getState().kind).toBe('pending');
    await vi.advanceTimersByTimeAsync(40);
    expect(g.getState().kind).toBe('unsafe');
  });

  it('starts every new chat blurred, even after a shown one', async () => {
    c.load();
    const g = make();
    g.startChat(frames());
    await vi.advanceTimersByTimeAsync(40);
    expect(g.getState().kind).toBe('shown');
    g.endChat();
    g.startChat(frames());
    expect(g.getState().kind).toBe('pending');
    await vi.advanceTimersByTimeAsync(40);
    expect(seen).toEqual(['shown', 'pending', 'shown']);
  });

  it('with the setting off, shows every chat and judges nothing', async () => {
    const g = make(null);
    g.startChat(frames());
    expect(g.getState()).toEqual({ kind: 'off', reason: 'disabled' });
    await vi.advanceTimersByTimeAsync(2000);
    expect(c.frames).toEqual([]);
  });

  it('shows the video with the notice when the model cannot load, in this chat and the next', async () => {
    const g = make();
    g.startChat(frames());
    expect(g.getState().kind).toBe('pending');
    c.failLoad();
    await vi.advanceTimersByTimeAsync(0);
    expect(g.getState()).toEqual({ kind: 'off', reason: 'failed' });
    g.startChat(frames());
    expect(g.getState()).toEqual({ kind: 'off', reason: 'failed' });
    await vi.advanceTimersByTimeAsync(2000);
    expect(c.frames).toEqual([]);
  });

  it('shows the video with the notice when a frame takes over a second', async () => {
    c.load();
    c.ms = 1200;
    const g = make();
    g.startChat(frames());
    await vi.advanceTimersByTimeAsync(999);
    expect(g.getState().kind).toBe('pending');
    await vi.advanceTimersByTimeAsync(1); // shown at the one-second mark, not when the verdict comes
    expect(g.getState()).toEqual({ kind: 'off', reason: 'slow' });
    await vi.advanceTimersByTimeAsync(5000);
    expect(c.frames).toEqual([1]); // a slow device is spared the work for this chat
  });

  it('once shown, turns off after three frames in a row over a second, not after one', async () => {
    c.load();
    // Frames judged 0–40, 500–2000 (slow), 2000–2040, 2500–4000, 4000–5500, 5500–7000 (three slow in a row).
    c.durations = [40, 1500, 40, 1500, 1500, 1500];
    const g = make();
    g.startChat(frames());
    await vi.advanceTimersByTimeAsync(2000);
    expect(g.getState().kind).toBe('shown'); // one slow frame is a hiccup
    await vi.advanceTimersByTimeAsync(4999);
    expect(g.getState().kind).toBe('shown');
    await vi.advanceTimersByTimeAsync(1);
    expect(g.getState()).toEqual({ kind: 'off', reason: 'slow' });
  });

  it('still blurs when the late verdict of a slow first frame is unsafe', async () => {
    c.load();
    c.ms = 1200;
    c.verdicts = [porn];
    const g = make();
    g.startChat(frames());
    await vi.advanceTimersByTimeAsync(1000);
    expect(g.getState()).toEqual({ kind: 'off', reason: 'slow' }); // shown unjudged after a second
    await vi.advanceTimersByTimeAsync(200);
    expect(g.getState().kind).toBe('unsafe');
  });

  it('does not keep the video hidden while the model is still loading', async () => {
    const g = make();
    g.startChat(frames());
    await vi.advanceTimersByTimeAsync(9999);
    expect(g.getState().kind).toBe('pending');
    await vi.advanceTimersByTimeAsync(1);
    expect(g.getState()).toEqual({ kind: 'off', reason: 'slow' });
  });

  it('waits blurred, without a deadline, while the stranger has sent no frame', async () => {
    c.load();
    const g = make();
    g.startChat(noFrames);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(g.getState().kind).toBe('pending');
    g.endChat();
  });
});
