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
    switchMode: vi.fn(),
  };
}

const a0 = actions;
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
    expect([button('next').disabled, button('stop').disabled, button('report').disabled]).toEqual([false, false, true]);
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

  it('pins every ending above the composer, announced, with the right placeholder', () => {
    const a = actions();
    const { rerender } = render(<ChatScreen view={view({ phase: 'waiting' })} actions={a} />);
    const pinned = screen.getByTestId('pinned');
    expect(pinned.getAttribute('aria-live')).toBe('assertive');
    expect(pinned.textContent).toBe('');
    expect(input().placeholder).toBe('Waiting for a stranger…');
    for (const reason of ['left', 'next', 'disconnected', 'reported'] as const) {
      rerender(<ChatScreen view={view({ phase: 'ended', room: 'r1', endReason: reason })} actions={a} />);
      expect(screen.getByTestId('pinned').textContent).toContain('Stranger has disconnected.');
      expect(input().placeholder).toBe('Chat ended');
    }
    rerender(<ChatScreen view={view({ phase: 'ended', room: 'r1', endReason: 'you-reported' })} actions={a} />);
    expect(screen.getByTestId('pinned').textContent).toContain('You reported the stranger');
    // The pinned line comes right before the controls and the composer, outside the scrolling log.
    const log = screen.getByTestId('chat-log');
    expect(log.contains(screen.getByTestId('pinned'))).toBe(false);
  });

  it('pins a lost connection, ours or the stranger’s, while the chat is live', () => {
    const a = actions();
    const { rerender } = render(
      <ChatScreen view={view({ phase: 'chatting', room: 'r1', link: 'reconnecting' })} actions={a} />,
    );
    expect(screen.getByTestId('pinned').dataset.kind).toBe('self-offline');
    rerender(
      <ChatScreen
        view={view({ phase: 'chatting', room: 'r1', partner: { camera: true, mic: true, link: 'lost' } })}
        actions={a}
      />,
    );
    expect(screen.getByTestId('pinned').dataset.kind).toBe('partner-lost');
    expect(button('next').disabled).toBe(false);
  });

  it('shows pending lines as such', () => {
    render(
      <ChatScreen
        view={view({
          phase: 'chatting',
          room: 'r1',
          lines: [
            { id: 1, from: 'you', text: 'a', seq: 1, delivery: 'sent' },
            { id: 2, from: 'you', text: 'b', seq: 2, delivery: 'pending' },
          ],
        })}
        actions={a0()}
      />,
    );
    const lines = screen.getByTestId('chat-log').querySelectorAll('.line');
    expect([...lines].map((l) => (l as HTMLElement).dataset.delivery)).toEqual(['sent', 'pending']);
  });

  it('video: labels the stranger’s camera off, mic off and lost connection; the badge is never Direct then', () => {
    const v = (partner: CallView['partner'], link: CallView['link'] = 'open') =>
      view({ mode: 'video', phase: 'chatting', room: 'r1', connection: 'direct', partner, link });
    const { rerender } = render(<ChatScreen view={v({ camera: false, mic: false, link: 'ok' })} actions={a0()} />);
    expect(screen.getByTestId('partner-state').dataset.state).toBe('camera-off');
    expect(screen.getByTestId('partner-muted')).toBeTruthy();
    expect(screen.getByTestId('connection-state').dataset.state).toBe('direct');
    rerender(<ChatScreen view={v({ camera: true, mic: true, link: 'lost' })} actions={a0()} />);
    expect(screen.getByTestId('partner-state').dataset.state).toBe('lost');
    expect(screen.getByTestId('connection-state').dataset.state).toBe('reconnecting');
    rerender(<ChatScreen view={v({ camera: true, mic: true, link: 'ok' }, 'reconnecting')} actions={a0()} />);
    expect(screen.queryByTestId('partner-state')).toBeNull();
    expect(screen.getByTestId('connection-state').dataset.state).toBe('reconnecting');
  });

  it('Back during a chat stays on the page and asks; Stay keeps the chat, End chat goes home', () => {
    const a = actions();
    render(<ChatScreen view={view({ phase: 'chatting', room: 'r1' })} actions={a} />);
    expect((window.history.state as { screen?: string } | null)?.screen).toBe('stranger-chat');
    act(() => void window.dispatchEvent(new PopStateEvent('popstate', { state: null })));
    expect(screen.getByTestId('leave-dialog')).toBeTruthy();
    expect((window.history.state as { screen?: string } | null)?.screen).toBe('stranger-chat');
    expect(a.home).not.toHaveBeenCalled();
    fireEvent.click(screen.getByTestId('leave-stay'));
    expect(screen.queryByTestId('leave-dialog')).toBeNull();
    // The logo asks too.
    fireEvent.click(screen.getByRole('button', { name: /back to the start page/i }));
    fireEvent.click(screen.getByTestId('leave-confirm'));
    expect(a.home).toHaveBeenCalledTimes(1);
  });

  it('Back after a chat ended goes home without asking', () => {
    const a = actions();
    render(<ChatScreen view={view({ phase: 'ended', room: 'r1', endReason: 'left' })} actions={a} />);
    act(() => void window.dispatchEvent(new PopStateEvent('popstate', { state: null })));
    expect(screen.queryByTestId('leave-dialog')).toBeNull();
    expect(a.home).toHaveBeenCalledTimes(1);
  });

  it('has a main landmark and a top heading', () => {
    render(<ChatScreen view={view({ phase: 'waiting' })} actions={a0()} />);
    expect(screen.getByRole('main')).toBeTruthy();
    expect(screen.getByRole('heading', { level: 1 })).toBeTruthy();
  });

  it('"Really?" times out after 3 s', () => {
    vi.useFakeTimers();
    try {
      render(<ChatScreen view={view({ phase: 'chatting', room: 'r1' })} actions={a0()} />);
      esc();
      expect(button('next').textContent).toContain('Really?');
      act(() => void vi.advanceTimersByTime(3100));
      expect(button('next').textContent).not.toContain('Really?');
    } finally {
      vi.useRealTimers();
    }
  });

  it('offers the other mode after 10 s of searching, with the per-mode counts', () => {
    vi.useFakeTimers();
    try {
      const a = actions();
      render(<ChatScreen view={view({ phase: 'waiting', mode: 'text', waiting: { video: 3, text: 1 } })} actions={a} />);
      expect(screen.getByTestId('status').textContent).toContain(
        'Nobody else is looking for a text chat right now; 3 waiting for video.',
      );
      expect(screen.getByTestId('searching')).toBeTruthy();
      expect(screen.queryByTestId('mode-offer')).toBeNull();
      act(() => void vi.advanceTimersByTime(10_000));
      fireEvent.click(screen.getByTestId('switch-mode'));
      expect(a.switchMode).toHaveBeenCalledTimes(1);
    } finally {
      vi.useRealTimers();
    }
  });

  it('says so when the match is random because nobody shared the interests', () => {
    render(<ChatScreen view={view({ phase: 'chatting', room: 'r1', interests: ['cats'] })} actions={a0()} />);
    expect(screen.getByTestId('status').textContent).toContain('Nobody with your interests was around');
  });
});
