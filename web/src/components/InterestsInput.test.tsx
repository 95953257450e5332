import { cleanup, fireEvent, render, screen } from '@testing-library/react';
import { useState } from 'react';
import { afterEach, describe, expect, it } from 'vitest';
import { InterestsInput } from './InterestsInput';

let latest: string[] = [];
function Harness() {
  const [v, setV] = useState<string[]>([]);
  return (
    <InterestsInput
      value={v}
      onChange={(next) => {
        latest = next;
        setV(next);
      }}
    />
  );
}

afterEach(cleanup);

const input = () => screen.getByTestId<HTMLInputElement>('interests-input');
const type = (text: string) => fireEvent.change(input(), { target: { value: text } });
const enter = () => fireEvent.keyDown(input(), { key: 'Enter' });

describe('InterestsInput', () => {
  it('adds on Enter and comma, normalised like the server, and removes on click', () => {
    render(<Harness />);
    type('  Music ');
    enter();
    type('FILMS, music, cats,');
    expect(latest).toEqual(['music', 'films', 'cats']);
    type('x'.repeat(33));
    enter();
    expect(latest).toEqual(['music', 'films', 'cats']); // over 32 code points: dropped
    fireEvent.click(screen.getByRole('button', { name: 'Remove interest films' }));
    expect(latest).toEqual(['music', 'cats']);
    fireEvent.keyDown(input(), { key: 'Backspace' });
    expect(latest).toEqual(['music']);
  });

  it('stops at 10', () => {
    render(<Harness />);
    type(Array.from({ length: 12 }, (_, i) => `t${i}`).join(',') + ',');
    expect(latest).toHaveLength(10);
    expect(input().disabled).toBe(true);
  });

  it('says why an interest was left out instead of dropping it silently', () => {
    render(<Harness />);
    type('x'.repeat(33));
    enter();
    expect(latest).toEqual([]);
    expect(screen.getByText(/at most 32 characters; one was left out/)).toBeTruthy();
    type('a,b,c,d,e,f,g,h,i,j,k,');
    expect(latest).toHaveLength(10);
    expect(screen.getByText(/Only the first 10 interests are kept/)).toBeTruthy();
  });
});
