// The nudity guard's policy: what the viewer sees of the stranger's video,
// as a pure state machine. No timers, no DOM, no model here: the sampling
// loop (guard.ts) feeds it events and renders what it returns.

/** The model's five classes (nsfwjs), each a probability in [0, 1]. */
export interface Scores {
  drawing: number;
  hentai: number;
  neutral: number;
  porn: number;
  sexy: number;
}

/** Why the guard is not judging this chat's video. */
export type OffReason =
  /** The viewer turned "Blur nudity" off on the landing page. */
  | 'disabled'
  /** The model or its runtime could not be loaded. */
  | 'failed'
  /** Classifying a frame took longer than a second on this device. */
  | 'slow';

export type GuardState =
  /** A chat started and no frame was judged yet: blurred. */
  | { kind: 'pending' }
  /** The last frames were judged safe: shown. */
  | { kind: 'shown' }
  /** A frame was judged porn or hentai: blurred until the viewer chooses. */
  | { kind: 'unsafe'; scores: Scores }
  /** The viewer chose "show anyway": shown, unjudged, until the chat ends. */
  | { kind: 'shown-anyway' }
  /** Not judging: shown, with a notice that the guard is off. */
  | { kind: 'off'; reason: OffReason };

export type GuardEvent =
  /** A new chat (a new stranger) begins; `modelFailed` carries over from earlier chats. */
  | { type: 'chat-started'; enabled: boolean; modelFailed: boolean }
  /** A frame was judged. */
  | { type: 'verdict'; scores: Scores }
  | { type: 'model-failed' }
  /**
   * The device cannot judge a frame a second: the first verdict did not
   * come in time (guard.ts decides when), so the video is shown unjudged.
   */
  | { type: 'too-slow' }
  | { type: 'show-anyway' };

/**
 * A frame is unsafe when porn or hentai reach this probability. The five
 * probabilities add up to one, so at most one of the two can be above one
 * half; `sexy` (swimwear, underwear) never blurs on its own.
 */
export const UNSAFE_THRESHOLD = 0.5;

/** The device must judge at least one frame a second, or the guard gives up for the chat. */
export const SLOW_MS = 1000;

/** Slow verdicts in a row, once the video is shown, that turn the guard off (one may be a hiccup). */
export const SLOW_STREAK = 3;

export const initialState: GuardState = { kind: 'pending' };

export function isUnsafe(s: Scores, threshold = UNSAFE_THRESHOLD): boolean {
  return s.porn >= threshold || s.hentai >= threshold;
}

/** Whether the video is blurred in this state. */
export function isBlurred(s: GuardState): boolean {
  return s.kind === 'pending' || s.kind === 'unsafe';
}

/** Whether frames should still be sampled and judged in this state. */
export function wantsFrames(s: GuardState): boolean {
  return s.kind === 'pending' || s.kind === 'shown';
}

export function reduce(s: GuardState, e: GuardEvent): GuardState {
  switch (e.type) {
    case 'chat-started':
      // Everything else is for one chat only: "show anyway" and "slow" too.
      if (!e.enabled) return { kind: 'off', reason: 'disabled' };
      if (e.modelFailed) return { kind: 'off', reason: 'failed' };
      return initialState;
    case 'verdict':
      // The verdict of a frame still in flight when the device was found too
      // slow: an unsafe one blurs all the same (safety before speed).
      if (s.kind === 'off' && s.reason === 'slow' && isUnsafe(e.scores)) return { kind: 'unsafe', scores: e.scores };
      if (!wantsFrames(s)) return s;
      if (isUnsafe(e.scores)) return { kind: 'unsafe', scores: e.scores };
      return s.kind === 'shown' ? s : { kind: 'shown' };
    case 'model-failed':
      // A video the viewer chose to see, or already sees unjudged, stays as it is.
      if (s.kind === 'off' || s.kind === 'shown-anyway') return s;
      // An unsafe frame already judged stays blurred; the buttons still work.
      if (s.kind === 'unsafe') return s;
      return { kind: 'off', reason: 'failed' };
    case 'too-slow':
      if (s.kind !== 'pending' && s.kind !== 'shown') return s;
      return { kind: 'off', reason: 'slow' };
    case 'show-anyway':
      return s.kind === 'unsafe' ? { kind: 'shown-anyway' } : s;
  }
}
