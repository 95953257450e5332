import { act, cleanup, fireEvent, render, screen } from '@testing-library/react';
import { StrictMode } from 'react';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { GuardedVideo } from './GuardedVideo';
import { GuardSetting } from './GuardSetting';
import type { FromWorker, ToWorker } from './messages';

(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;

/** Stands in for the guard worker: counts instances, records messages, answers as told. */
class FakeWorker {
  static instances: FakeWorker[] = [];
  static live = 0;
  onmessage: ((e: MessageEvent<FromWorker>) => void) | null = null;
  onerror: ((e: ErrorEvent) => void) | null = null;
  received: ToWorker[] = [];
  terminated = false;
  constructor(
    readonly url: URL | string,
    readonly options?: WorkerOptions,
  ) {
    FakeWorker.instances.push(this);
    FakeWorker.live++;
  }
  postMessage(m: ToWorker) {
    this.received.push(m);
  }
  terminate() {
    if (!this.terminated) FakeWorker.live--;
    this.terminated = true;
  }
  answer(m: FromWorker) {
    this.onmessage?.({ data: m } as MessageEvent<FromWorker>);
  }
}

const mount = async (ui: React.ReactNode) => {
  let r: ReturnType<typeof render> | undefined;
  await act(async () => {
    r = render(<StrictMode>{ui}</StrictMode>);
  });
  return r!;
};

const noop = () => {};

beforeEach(() => {
  FakeWorker.instances = [];
  FakeWorker.live = 0;
  localStorage.clear();
  vi.stubGlobal('Worker', FakeWorker);
  vi.spyOn(HTMLMediaElement.prototype, 'play').mockResolvedValue(undefined);
});

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

describe('GuardedVideo', () => {
  it('starts loading the model when the chat screen opens, before any stranger, and stops with it', async () => {
    const r = await mount(<GuardedVideo stream={null} onNext={noop} onReport={noop} />);
    // StrictMode mounts twice: one worker is left alive.
    expect(FakeWorker.live).toBe(1);
    const w = FakeWorker.instances.at(-1)!;
    expect(w.options?.type).toBe('module');
    const load = w.received[0];
    expect(load?.type).toBe('load');
    if (load?.type !== 'load') return;
    // Everything comes from this origin.
    expect(new URL(load.modelUrl).origin).toBe(location.origin);
    for (const u of Object.values(load.wasmPaths)) expect(new URL(u).origin).toBe(location.origin);
    r.unmount();
    expect(FakeWorker.live).toBe(0);
  });

  it('loads nothing when the viewer turned Blur nudity off', async () => {
    localStorage.setItem('stranger.blurNudity', 'off');
    await mount(<GuardedVideo stream={{} as MediaStream} onNext={noop} onReport={noop} />);
    expect(FakeWorker.instances).toHaveLength(0);
    expect(screen.getByTestId('guard').dataset.guard).toBe('off');
    expect(screen.queryByTestId('guard-notice')).toBeNull();
    expect(screen.getByTestId('guard').className).not.toContain('guard-blurred');
  });

  it('blurs a new stranger, and shows them with a notice when the model fails to load', async () => {
    await mount(<GuardedVideo stream={{} as MediaStream} onNext={noop} onReport={noop} />);
    const box = screen.getByTestId('guard');
    expect(box.dataset.guard).toBe('pending');
    expect(box.className).toContain('guard-blurred');
    await act(async () => FakeWorker.instances.at(-1)!.answer({ type: 'failed', message: 'fetch failed' }));
    expect(box.dataset.guard).toBe('off');
    expect(box.className).not.toContain('guard-blurred');
    expect(screen.getByTestId('guard-notice').textContent).toMatch(/guard off/i);
  });
});

describe('GuardedVideo with a judged frame', () => {
  // jsdom decodes no video: pretend the remote <video> has a frame, and
  // that the browser scaled it into a bitmap.
  beforeEach(() => {
    vi.spyOn(HTMLMediaElement.prototype, 'readyState', 'get').mockReturnValue(HTMLMediaElement.HAVE_ENOUGH_DATA);
    vi.spyOn(HTMLVideoElement.prototype, 'videoWidth', 'get').mockReturnValue(640);
    vi.stubGlobal('createImageBitmap', vi.fn(async () => ({ width: 224, height: 224, close() {} })));
  });

  const verdict = async (w: FakeWorker, scores: Partial<Record<'porn' | 'hentai' | 'sexy' | 'neutral', number>>) => {
    await act(async () => {
      await vi.waitFor(() => expect(w.received.some((m) => m.type === 'classify')).toBe(true));
      const m = w.received.filter((x) => x.type === 'classify').at(-1)!;
      if (m.type !== 'classify') return;
      w.answer({ type: 'verdict', id: m.id, scores: { drawing: 0, hentai: 0, neutral: 0, porn: 0, sexy: 0, ...scores }, inferMs: 30 });
    });
  };

  it('shows a safe stranger, and blurs an unsafe one with show anyway, next and report', async () => {
    const onNext = vi.fn();
    const onReport = vi.fn();
    await mount(<GuardedVideo stream={{} as MediaStream} onNext={onNext} onReport={onReport} />);
    const w = FakeWorker.instances.at(-1)!;
    await act(async () => w.answer({ type: 'ready', backend: 'wasm', loadMs: 10 }));
    const box = screen.getByTestId('guard');
    await verdict(w, { neutral: 0.99 });
    expect(box.dataset.guard).toBe('shown');
    expect(box.className).not.toContain('guard-blurred');
    expect(window.__strangerGuard?.classified).toBe(1);

    w.received = [];
    await verdict(w, { porn: 0.9 });
    expect(box.dataset.guard).toBe('unsafe');
    expect(box.className).toContain('guard-blurred');
    expect(screen.getByRole('alert').textContent).toMatch(/nudity/);
    fireEvent.click(screen.getByTestId('guard-next'));
    fireEvent.click(screen.getByTestId('guard-report'));
    expect(onNext).toHaveBeenCalledTimes(1);
    expect(onReport).toHaveBeenCalledTimes(1);
    await act(async () => fireEvent.click(screen.getByTestId('guard-show')));
    expect(box.dataset.guard).toBe('shown-anyway');
    expect(box.className).not.toContain('guard-blurred');
    expect(screen.queryByRole('alert')).toBeNull();
  });
});

describe('GuardSetting', () => {
  it('is on by default and remembers being turned off', async () => {
    const r = await mount(<GuardSetting />);
    const toggle = screen.getByTestId<HTMLInputElement>('guard-toggle');
    expect(toggle.checked).toBe(true);
    fireEvent.click(toggle);
    expect(toggle.checked).toBe(false);
    r.unmount();
    await mount(<GuardSetting />);
    expect(screen.getByTestId<HTMLInputElement>('guard-toggle').checked).toBe(false);
  });
});
