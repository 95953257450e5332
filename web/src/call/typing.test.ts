import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Typing } from './typing';

beforeEach(() => vi.useFakeTimers());
afterEach(() => vi.useRealTimers());

function setup() {
  const sent: boolean[] = [];
  const shown: boolean[] = [];
  const t = new Typing(
    (v) => sent.push(v),
    (v) => shown.push(v),
  );
  return { t, sent, shown };
}

describe('Typing', () => {
  it('ours: true once, false after 3 s without an edit or when emptied, nothing after a sent line', () => {
    const { t, sent } = setup();
    t.input('h');
    vi.advanceTimersByTime(2000);
    t.input('hi');
    vi.advanceTimersByTime(2999);
    expect(sent).toEqual([true]);
    vi.advanceTimersByTime(1);
    expect(sent).toEqual([true, false]);
    t.input('again');
    t.input('  ');
    expect(sent).toEqual([true, false, true, false]);
    t.input('a line');
    t.lineSent();
    vi.advanceTimersByTime(10_000);
    t.end();
    expect(sent).toEqual([true, false, true, false, true]);
  });

  it('theirs: shown until their false or their line, and never longer than 15 s', () => {
    const { t, shown } = setup();
    t.stranger(true);
    t.stranger(false);
    t.stranger(true);
    t.strangerLine();
    expect(shown).toEqual([true, false, true, false]);
    t.stranger(true);
    vi.advanceTimersByTime(14_999);
    expect(shown.at(-1)).toBe(true);
    vi.advanceTimersByTime(1);
    expect(shown.at(-1)).toBe(false);
  });

  it('end: false if one is due, and no timer fires afterwards', () => {
    const { t, sent, shown } = setup();
    t.input('x');
    t.stranger(true);
    t.end();
    expect(sent).toEqual([true, false]);
    const n = shown.length;
    vi.advanceTimersByTime(60_000);
    expect(sent).toEqual([true, false]);
    expect(shown).toHaveLength(n);
  });
});
