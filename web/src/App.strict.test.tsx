import { act, cleanup, fireEvent, render, screen, waitFor } from '@testing-library/react';
import { StrictMode } from 'react';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { App } from './App';
import { cameraStream, FakeMediaStream, FakePeerConnection, FakeSocket, welcome } from './test/fakes';

// React warns unless told that updates are wrapped in act().
(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;

let seq = 0;
const server = (msg: Record<string, unknown>) =>
  act(() => {
    FakeSocket.last().receive({ ...msg, seq: ++seq });
  });

async function mount() {
  let r: ReturnType<typeof render> | undefined;
  await act(async () => {
    r = render(
      <StrictMode>
        <App />
      </StrictMode>,
    );
  });
  return r!;
}

beforeEach(() => {
  FakeSocket.reset();
  FakePeerConnection.reset();
  seq = 0;
  vi.stubGlobal('WebSocket', FakeSocket);
  // jsdom has no media playback.
  vi.spyOn(HTMLMediaElement.prototype, 'play').mockResolvedValue(undefined);
  vi.stubGlobal('RTCPeerConnection', FakePeerConnection);
  vi.stubGlobal('MediaStream', FakeMediaStream);
  vi.stubGlobal(
    'fetch',
    vi.fn(async () => ({ ok: true, json: async () => ({ online: 3 }) })),
  );
  Object.defineProperty(navigator, 'mediaDevices', {
    configurable: true,
    value: { getUserMedia: vi.fn(async () => cameraStream()) },
  });
});

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

describe('App under React.StrictMode', () => {
  it('has exactly one socket and at most one peer connection at any time', async () => {
    const view = await mount();
    // StrictMode mounts, unmounts and mounts again: only the surviving mount opens a socket.
    expect(FakeSocket.live).toBe(1);
    expect(FakeSocket.maxLive).toBe(1);
    expect(FakeSocket.instances).toHaveLength(1);
    expect(FakeSocket.last().url).toBe(`ws://${window.location.host}/ws`);

    act(() => {
      FakeSocket.last().open();
      FakeSocket.last().receive(welcome({ online: 12 }));
    });
    expect(screen.getByTestId('online-count').textContent).toBe('12 online');

    // Starting needs the 18+ and terms box.
    const startVideo = screen.getByTestId<HTMLButtonElement>('start-video');
    expect(startVideo.disabled).toBe(true);
    fireEvent.click(screen.getByTestId('accept-terms'));
    expect(startVideo.disabled).toBe(false);
    expect(screen.getByTestId<HTMLInputElement>('privacy-toggle').disabled).toBe(true); // no TURN

    const interests = screen.getByTestId('interests-input');
    fireEvent.change(interests, { target: { value: 'Music' } });
    fireEvent.keyDown(interests, { key: 'Enter' });
    fireEvent.change(interests, { target: { value: 'films,' } });
    expect(screen.getByRole('button', { name: 'Remove interest music' })).toBeTruthy();
    expect(screen.getByRole('button', { name: 'Remove interest films' })).toBeTruthy();

    fireEvent.click(startVideo);
    await waitFor(() => expect(FakeSocket.last().sentOf('join')).toHaveLength(1));
    expect(FakeSocket.last().sentOf('join')[0]).toMatchObject({ mode: 'video', interests: ['music', 'films'] });
    expect(FakePeerConnection.live).toBe(1);
    expect(screen.getByTestId('status').textContent).toContain('Looking for someone you can chat with…');
    expect(window.__stranger?.pcCount).toBe(1);
    expect(window.__stranger?.state).toBe('waiting');

    server({ type: 'waiting' });
    server({ type: 'matched', room: 'r1', initiator: true, mode: 'video', commonInterests: ['music'] });
    await waitFor(() => expect(FakeSocket.last().sentOf('signal')).toHaveLength(1));
    expect(screen.getByTestId('status').textContent).toContain("You're now chatting with a random stranger. Say hi!");
    expect(screen.getByTestId('status').textContent).toContain('You both like music.');
    expect(window.__stranger?.room).toBe('r1');

    // Chat both ways, with the typing indicator.
    server({ type: 'typing', typing: true });
    expect(screen.getByTestId('typing').textContent).toBe('Stranger is typing…');
    server({ type: 'chat', text: 'hello stranger' });
    expect(screen.getByTestId('typing').textContent).toBe('');
    const input = screen.getByTestId('chat-input');
    fireEvent.change(input, { target: { value: 'hi!' } });
    fireEvent.submit(input.closest('form')!);
    expect(screen.getByTestId('chat-log').textContent).toContain('Stranger: hello stranger');
    expect(screen.getByTestId('chat-log').textContent).toContain('You: hi!');
    expect(FakeSocket.last().sentOf('chat')).toMatchObject([{ text: 'hi!' }]);

    // Esc once asks, Esc again skips.
    fireEvent.keyDown(window, { key: 'Escape' });
    expect(screen.getByTestId('next').textContent).toContain('Really?');
    expect(FakeSocket.last().sentOf('next')).toHaveLength(0);
    fireEvent.keyDown(window, { key: 'Escape' });
    expect(FakeSocket.last().sentOf('next')).toHaveLength(1);
    expect(FakePeerConnection.live).toBe(1);

    server({ type: 'matched', room: 'r2', initiator: false, mode: 'video', commonInterests: [] });
    server({ type: 'peer_left', reason: 'left' });
    expect(screen.getByTestId('status').textContent).toContain('Stranger has disconnected.');
    expect(screen.getByTestId('pinned').textContent).toContain('Stranger has disconnected.');
    fireEvent.click(screen.getByTestId('next'));
    server({ type: 'matched', room: 'r3', initiator: true, mode: 'video', commonInterests: [] });
    fireEvent.click(screen.getByTestId('stop'));
    // Stop goes home, which says so.
    expect(screen.getByText('You left the chat.')).toBeTruthy();
    expect(screen.queryByTestId('chat-log')).toBeNull();

    expect(FakeSocket.live).toBe(1);
    expect(FakeSocket.maxLive).toBe(1);
    expect(FakePeerConnection.maxLive).toBe(1);
    expect(FakePeerConnection.instances.length).toBeGreaterThanOrEqual(4);

    view.unmount();
    expect(FakeSocket.live).toBe(0);
    expect(FakePeerConnection.live).toBe(0);
    expect(window.__stranger).toBeUndefined();
  });

  it('shows Reconnecting… while the signaling socket is down and recovers', async () => {
    await mount();
    act(() => {
      FakeSocket.last().open();
      FakeSocket.last().receive(welcome());
    });
    fireEvent.click(screen.getByTestId('accept-terms'));
    fireEvent.click(screen.getByTestId('start-text'));
    server({ type: 'matched', room: 'r1', initiator: true, mode: 'text', commonInterests: [] });
    act(() => FakeSocket.last().drop());
    expect(screen.getByTestId('link-state').textContent).toContain('Reconnecting…');
    await waitFor(() => expect(FakeSocket.instances.length).toBe(2), { timeout: 2000 });
    expect(FakeSocket.last().url).toContain('resume=tok1&last=1');
    act(() => {
      FakeSocket.last().open();
      FakeSocket.last().receive(welcome({ resumed: true, resumeToken: 'tok2', lastSeq: 1, state: 'chatting' }));
    });
    expect(screen.queryByTestId('link-state')).toBeNull();
    expect(screen.getByTestId<HTMLInputElement>('chat-input').disabled).toBe(false);
  });

  it('offers text chat when the camera is blocked', async () => {
    Object.defineProperty(navigator, 'mediaDevices', {
      configurable: true,
      value: {
        getUserMedia: vi.fn(async () => {
          throw Object.assign(new Error('blocked'), { name: 'NotAllowedError' });
        }),
      },
    });
    await mount();
    act(() => {
      FakeSocket.last().open();
      FakeSocket.last().receive(welcome());
    });
    fireEvent.click(screen.getByTestId('accept-terms'));
    fireEvent.click(screen.getByTestId('start-video'));
    const alert = await screen.findByRole('alert');
    expect(alert.textContent).toMatch(/blocked/);
    fireEvent.click(screen.getByRole('button', { name: 'Continue with text' }));
    expect(FakeSocket.last().sentOf('join')).toMatchObject([{ mode: 'text' }]);
  });
  it('join answered with error banned: the banned screen, with nothing to start', async () => {
    await mount();
    act(() => {
      FakeSocket.last().open();
      FakeSocket.last().receive(welcome());
    });
    fireEvent.click(screen.getByTestId('accept-terms'));
    fireEvent.click(screen.getByTestId('start-text'));
    expect(FakeSocket.last().sentOf('join')).toHaveLength(1);
    server({ type: 'error', code: 'banned', message: 'banned' });
    expect(screen.getByRole('heading', { name: 'You can’t chat right now' })).toBeTruthy();
    expect(screen.queryAllByRole('button')).toEqual([]);
    expect(screen.queryByTestId('start-text')).toBeNull();
  });

  it('a ban pushed mid-chat (error banned, close 4003): the banned screen at once, and no reconnect', async () => {
    await mount();
    act(() => {
      FakeSocket.last().open();
      FakeSocket.last().receive(welcome());
    });
    fireEvent.click(screen.getByTestId('accept-terms'));
    fireEvent.click(screen.getByTestId('start-text'));
    server({ type: 'matched', room: 'r1', initiator: true, mode: 'text', commonInterests: [] });
    server({ type: 'error', code: 'banned', message: 'banned' });
    expect(screen.getByTestId('banned')).toBeTruthy();
    act(() => FakeSocket.last().drop(4003));
    await new Promise((r) => setTimeout(r, 1500));
    expect(FakeSocket.instances).toHaveLength(1);
    expect(screen.getByTestId('banned')).toBeTruthy();
  });

  it('close 4003 without the error frame shows the banned screen too', async () => {
    await mount();
    act(() => {
      FakeSocket.last().open();
      FakeSocket.last().receive(welcome());
    });
    act(() => FakeSocket.last().drop(4003));
    expect(screen.getByTestId('banned')).toBeTruthy();
    await new Promise((r) => setTimeout(r, 1500));
    expect(FakeSocket.instances).toHaveLength(1);
  });

  it('report: the dialog sends the reason; a text chat uploads no picture', async () => {
    await mount();
    act(() => {
      FakeSocket.last().open();
      FakeSocket.last().receive(welcome());
    });
    fireEvent.click(screen.getByTestId('accept-terms'));
    fireEvent.click(screen.getByTestId('start-text'));
    server({ type: 'matched', room: 'r1', initiator: true, mode: 'text', commonInterests: [] });
    fireEvent.click(screen.getByTestId('report'));
    fireEvent.click(screen.getByTestId('reason-spam'));
    fireEvent.click(screen.getByTestId('report-confirm'));
    expect(FakeSocket.last().sentOf('report')).toMatchObject([{ type: 'report', reason: 'spam' }]);
    server({ type: 'reported', report: 'r1', evidenceToken: 'tok' });
    await act(async () => {});
    const fetched = vi.mocked(fetch).mock.calls.map((c) => (typeof c[0] === 'string' ? c[0] : ''));
    expect(fetched.filter((u) => u.includes('/api/evidence'))).toEqual([]);
    expect(screen.getByText('Thanks. The stranger was reported.')).toBeTruthy();
  });
});
