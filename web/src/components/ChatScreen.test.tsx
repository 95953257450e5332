import { act, cleanup, fireEvent, render, screen } from '@testing-library/react';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { CallActions } from '../call/useStrangerCall';
import { initialView, type CallView } from '../call/view';
import { MAX_CHAT_CODE_POINTS } from '../signaling/protocol';
import { ChatScreen } from './ChatScreen';

afterEach(cleanup);

function actions(): CallActions {
  return {
    start: vi.fn(),
    next: vi.fn(),
    stop: vi.fn(),
    home: vi.fn(),
    report: vi.fn(),
    sendChat: vi.fn(() => true),
    inputChanged: vi.fn(),
    toggleMic: vi.fn(),
    toggleCamera: vi.fn(),
    setPrivacy: vi.fn(),
    continueInText: vi.fn(),
    retryMedia: vi.fn(),
  };
}

const view = (v: Partial<CallView>): CallView => ({ ...initialView, link: 'open', mode: 'text', ...v });
const button = (id: string) => screen.getByTestId<HTMLButtonElement>(id);
const input = () => screen.getByTestId<HTMLInputElement>('chat-input');
const esc = () => act(() => void fireEvent.keyDown(window, { key: 'Escape' }));

describe('ChatScreen', () => {
  it('enables exactly the buttons allowedActions allows: no report while waiting', () => {
    const a = actions();
    const { rerender } = render(<ChatScreen view={view({ phase: 'waiting' })} actions={a} />);
    expect([button('next').disabled, button('stop').disabled, button('report').disabled]).toEqual([true, false, true]);
    expect(input().disabled).toBe(true);

    rerender(<ChatScreen view={view({ phase: 'chatting', room: 'r1' })} actions={a} />);
    expect([button('next').disabled, button('stop').disabled, button('report').disabled]).toEqual([false, false, false]);
    expect(input().disabled).toBe(false);

    rerender(<ChatScreen view={view({ phase: 'ended', room: 'r1', endReason: 'you-reported' })} actions={a} />);
    expect([button('next').disabled, button('stop').disabled, button('report').disabled]).toEqual([false, true, true]);
  });

  it('Esc asks "Really?" first and skips on the second; a new chat forgets the question', () => {
    const a = actions();
    const { rerender } = render(<ChatScreen view={view({ phase: 'chatting', room: 'r1' })} actions={a} />);
    esc();
    expect(button('next').textContent).toContain('Really?');
    expect(a.next).not.toHaveBeenCalled();
    esc();
    expect(a.next).toHaveBeenCalledTimes(1);

    esc();
    expect(button('next').textContent).toContain('Really?');
    rerender(<ChatScreen view={view({ phase: 'chatting', room: 'r2' })} actions={a} />);
    expect(button('next').textContent).not.toContain('Really?');
    rerender(<ChatScreen view={view({ phase: 'ended', room: 'r2', endReason: 'left' })} actions={a} />);
    esc();
    expect(a.next).toHaveBeenCalledTimes(2); // after a chat, one Esc starts a new one
  });

  it('the draft belongs to its chat, and the input takes at most the protocol limit', () => {
    const a = actions();
    const { rerender } = render(<ChatScreen view={view({ phase: 'chatting', room: 'r1' })} actions={a} />);
    expect(input().maxLength).toBe(MAX_CHAT_CODE_POINTS);
    fireEvent.change(input(), { target: { value: 'half a thought' } });
    expect(a.inputChanged).toHaveBeenCalledWith('half a thought');
    expect(input().value).toBe('half a thought');
    rerender(<ChatScreen view={view({ phase: 'ended', room: 'r1', endReason: 'left' })} actions={a} />);
    expect(input().value).toBe('');
    rerender(<ChatScreen view={view({ phase: 'chatting', room: 'r2' })} actions={a} />);
    expect(input().value).toBe('');
    fireEvent.change(input(), { target: { value: 'hello' } });
    fireEvent.submit(input().form!);
    expect(a.sendChat).toHaveBeenCalledWith('hello');
    expect(input().value).toBe('');
  });

  it('video mode: the stage shows the camera error with its two ways out, and no mic or camera buttons', () => {
    const a = actions();
    render(<ChatScreen view={view({ mode: 'video', phase: 'ended', mediaError: 'denied' })} actions={a} />);
    expect(screen.getByRole('alert').textContent).toMatch(/blocked/);
    expect(screen.queryByTestId('mic-toggle')).toBeNull();
    expect(button('next').disabled).toBe(true);
    fireEvent.click(button('continue-text'));
    expect(a.continueInText).toHaveBeenCalledTimes(1);
    expect(screen.getByTestId('remote-video')).toBeTruthy();
    expect(screen.getByTestId('local-video')).toBeTruthy();
  });
});
