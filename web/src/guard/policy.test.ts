import { describe, expect, it } from 'vitest';
import { initialState, isBlurred, reduce, type GuardState, type Scores } from './policy';

const scores = (over: Partial<Scores>): Scores => ({ drawing: 0, hentai: 0, neutral: 0, porn: 0, sexy: 0, ...over });
const safe = scores({ neutral: 0.97, sexy: 0.03 });
const porn = scores({ porn: 0.8, sexy: 0.2 });
const started: GuardState = reduce({ kind: 'shown' }, { type: 'chat-started', enabled: true, modelFailed: false });

describe('guard policy', () => {
  it('starts a chat blurred and shows it once a frame is judged safe', () => {
    expect(started).toEqual({ kind: 'pending' });
    expect(isBlurred(started)).toBe(true);
    const s = reduce(started, { type: 'verdict', scores: safe });
    expect(s).toEqual({ kind: 'shown' });
    expect(isBlurred(s)).toBe(false);
  });

  it('blurs on porn or hentai at the threshold, not on sexy alone', () => {
    const shown: GuardState = { kind: 'shown' };
    expect(reduce(shown, { type: 'verdict', scores: porn }).kind).toBe('unsafe');
    expect(reduce(shown, { type: 'verdict', scores: scores({ hentai: 0.5, drawing: 0.5 }) }).kind).toBe('unsafe');
    expect(reduce(shown, { type: 'verdict', scores: scores({ sexy: 0.95, porn: 0.05 }) }).kind).toBe('shown');
    expect(reduce(shown, { type: 'verdict', scores: scores({ porn: 0.49, sexy: 0.51 }) }).kind).toBe('shown');
  });

  it('keeps an unsafe chat blurred after later safe frames, until the viewer chooses', () => {
    const unsafe = reduce(started, { type: 'verdict', scores: porn });
    expect(reduce(unsafe, { type: 'verdict', scores: safe })).toBe(unsafe);
    const anyway = reduce(unsafe, { type: 'show-anyway' });
    expect(anyway).toEqual({ kind: 'shown-anyway' });
    expect(isBlurred(anyway)).toBe(false);
    // Show anyway holds for this chat only: the next starts blurred.
    expect(reduce(anyway, { type: 'verdict', scores: porn })).toBe(anyway);
    expect(reduce(anyway, { type: 'chat-started', enabled: true, modelFailed: false })).toEqual({ kind: 'pending' });
  });

  it('does nothing on show anyway when nothing is blurred for nudity', () => {
    expect(reduce(started, { type: 'show-anyway' })).toBe(started);
    expect(reduce({ kind: 'shown' }, { type: 'show-anyway' })).toEqual({ kind: 'shown' });
  });

  it('is off for the whole chat when the setting is off', () => {
    const off = reduce(initialState, { type: 'chat-started', enabled: false, modelFailed: false });
    expect(off).toEqual({ kind: 'off', reason: 'disabled' });
    expect(isBlurred(off)).toBe(false);
    expect(reduce(off, { type: 'verdict', scores: porn })).toBe(off);
  });

  it('shows the video with the notice when the model fails, now and in later chats', () => {
    expect(reduce(started, { type: 'model-failed' })).toEqual({ kind: 'off', reason: 'failed' });
    expect(reduce({ kind: 'shown' }, { type: 'model-failed' })).toEqual({ kind: 'off', reason: 'failed' });
    expect(reduce(initialState, { type: 'chat-started', enabled: true, modelFailed: true })).toEqual({
      kind: 'off',
      reason: 'failed',
    });
  });

  it('shows the video with the notice on a device slower than a frame a second', () => {
    expect(reduce(started, { type: 'too-slow' })).toEqual({ kind: 'off', reason: 'slow' });
    expect(reduce({ kind: 'shown' }, { type: 'too-slow' })).toEqual({ kind: 'off', reason: 'slow' });
    // A video blurred for nudity stays blurred: slowness is no reason to show it.
    const unsafe = reduce(started, { type: 'verdict', scores: porn });
    expect(reduce(unsafe, { type: 'too-slow' })).toBe(unsafe);
    // The late verdict of the slow frame: unsafe still blurs, safe changes nothing.
    const slow: GuardState = { kind: 'off', reason: 'slow' };
    expect(reduce(slow, { type: 'verdict', scores: porn }).kind).toBe('unsafe');
    expect(reduce(slow, { type: 'verdict', scores: safe })).toBe(slow);
    // Slow is judged per chat: the next one tries again.
    expect(reduce({ kind: 'off', reason: 'slow' }, { type: 'chat-started', enabled: true, modelFailed: false })).toEqual({
      kind: 'pending',
    });
  });
});
