import { useEffect, useRef, useState } from 'react';
import { VideoView } from '../components/VideoView';
import { guardAssets } from './assets';
import { createGuardWorker, WorkerClassifier } from './engine';
import { VideoFrames } from './frames';
import { Guard } from './guard';
import { initialState, isBlurred, type GuardState } from './policy';
import { readBlurNudity } from './setting';
import './guard.css';

/** Read-only facts for end-to-end tests and the benchmark, at window.__strangerGuard. */
export interface GuardDebug {
  readonly state: GuardState['kind'];
  readonly backend: string;
  /** Model load time in the worker, ms (0 until loaded). */
  readonly loadMs: number;
  /** Chats (remote streams) the guard started on since the chat screen opened. */
  readonly chats: number;
  /** Classifications since the chat screen opened. */
  readonly classified: number;
  /** The last classifications' round trips from the main thread, ms (at most 500). */
  readonly times: readonly number[];
  /** When the current chat's video was first shown (performance.timeOrigin + now), 0 before. */
  readonly shownAt: number;
}

declare global {
  interface Window {
    __strangerGuard?: GuardDebug;
  }
}

interface Props {
  stream: MediaStream | null;
  onNext: () => void;
  onReport: () => void;
}

const offText = {
  failed: 'Nudity guard off: it could not load on this device.',
  slow: 'Nudity guard off: this device is too slow for it.',
} as const;

/**
 * The stranger's video behind the nudity guard. The guard's model is loaded
 * when this mounts, that is when the chat screen opens and the viewer waits
 * in the queue; each new stream is a new chat and starts blurred.
 */
export function GuardedVideo({ stream, onNext, onReport }: Props) {
  const boxRef = useRef<HTMLDivElement>(null);
  const guardRef = useRef<Guard<ImageBitmap> | null>(null);
  // Counts chats for the debug handle (its counters live in the guard's effect).
  const startedRef = useRef<() => void>(() => {});
  // Read once per chat screen: the switch is on the landing page.
  const [enabled] = useState(readBlurNudity);
  const [state, setState] = useState<GuardState>(initialState);

  useEffect(() => {
    // With the guard off nothing is loaded: no worker, no tfjs, no model.
    const classifier = enabled ? new WorkerClassifier(createGuardWorker, guardAssets()) : null;
    const times: number[] = [];
    let classified = 0;
    let chats = 0;
    let shownAt = 0;
    const guard = new Guard<ImageBitmap>({
      classifier,
      onState: (s) => {
        if (s.kind === 'pending') shownAt = 0;
        else if (!isBlurred(s) && shownAt === 0) shownAt = performance.timeOrigin + performance.now();
        setState(s);
      },
      onVerdict: (_, ms) => {
        classified++;
        if (times.push(ms) > 500) times.shift();
      },
    });
    guardRef.current = guard;
    startedRef.current = () => chats++;
    const debug: GuardDebug = {
      get state() {
        return guard.getState().kind;
      },
      get backend() {
        return classifier?.backend ?? '';
      },
      get loadMs() {
        return classifier?.loadMs ?? 0;
      },
      get chats() {
        return chats;
      },
      get classified() {
        return classified;
      },
      get times() {
        return times.slice();
      },
      get shownAt() {
        return shownAt;
      },
    };
    window.__strangerGuard = debug;
    return () => {
      guard.endChat();
      classifier?.dispose();
      if (guardRef.current === guard) guardRef.current = null;
      startedRef.current = () => {};
      if (window.__strangerGuard === debug) delete window.__strangerGuard;
    };
  }, [enabled]);

  useEffect(() => {
    const guard = guardRef.current;
    const video = boxRef.current?.querySelector('video');
    if (!guard || !stream || !video) return;
    guard.startChat(new VideoFrames(video));
    startedRef.current();
    return () => guard.endChat();
  }, [stream]);

  const blurred = stream !== null && isBlurred(state);
  return (
    <div ref={boxRef} className={`guard ${blurred ? 'guard-blurred' : ''}`} data-testid="guard" data-guard={state.kind}>
      <VideoView stream={stream} className="remote-video" label="Stranger’s video" testId="remote-video" />
      {stream && state.kind === 'pending' && (
        <span className="guard-pill" role="status">
          Checking the video…
        </span>
      )}
      {stream && state.kind === 'off' && state.reason !== 'disabled' && (
        <span className="guard-pill" role="status" data-testid="guard-notice">
          {offText[state.reason]}
        </span>
      )}
      {stream && state.kind === 'unsafe' && (
        <div className="guard-unsafe" role="alert">
          <p>This video was blurred because it may show nudity.</p>
          <div className="guard-actions">
            <button type="button" className="btn btn-secondary" data-testid="guard-show" onClick={() => guardRef.current?.showAnyway()}>
              Show anyway
            </button>
            <button type="button" className="btn btn-primary" data-testid="guard-next" onClick={onNext}>
              Next
            </button>
            <button type="button" className="btn btn-secondary" data-testid="guard-report" onClick={onReport}>
              Report
            </button>
          </div>
        </div>
      )}
    </div>
  );
}
