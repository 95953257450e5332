import { describe, expect, it } from 'vitest';
import { joinList, statusText } from './status';

describe('statusText', () => {
  const base = { commonInterests: [] as string[], endReason: null, mediaError: null };
  it('uses the familiar messages', () => {
    expect(statusText({ ...base, phase: 'waiting' }).main).toBe('Looking for someone you can chat with…');
    expect(statusText({ ...base, phase: 'chatting' })).toEqual({
      main: "You're now chatting with a random stranger. Say hi!",
    });
    expect(statusText({ ...base, phase: 'chatting', commonInterests: ['music'] }).sub).toBe('You both like music.');
    expect(statusText({ ...base, phase: 'ended', endReason: 'disconnected' }).main).toBe('Stranger has disconnected.');
    expect(statusText({ ...base, phase: 'ended', endReason: 'you-left' }).main).toBe('You have disconnected.');
  });
  it('joins lists in English', () => {
    expect(joinList([])).toBe('');
    expect(joinList(['a'])).toBe('a');
    expect(joinList(['a', 'b'])).toBe('a and b');
    expect(joinList(['a', 'b', 'c'])).toBe('a, b and c');
  });
});
