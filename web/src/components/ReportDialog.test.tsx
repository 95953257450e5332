import { cleanup, fireEvent, render, screen, within } from '@testing-library/react';
import axe from 'axe-core';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { CallActions } from '../call/useStrangerCall';
import { initialView, type CallView } from '../call/view';
import { FakeMediaStream } from '../test/fakes';
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

const view = (v: Partial<CallView>): CallView => ({ ...initialView, link: 'open', mode: 'text', ...v });
const videoChat = () =>
  view({ phase: 'chatting', mode: 'video', room: 'r1', remoteStream: new FakeMediaStream() as unknown as MediaStream });

describe('ReportDialog', () => {
  it('the report button asks for a reason; nothing is reported before one is chosen', () => {
    const a = actions();
    render(<ChatScreen view={view({ phase: 'chatting', room: 'r1' })} actions={a} />);
    fireEvent.click(screen.getByTestId('report'));
    const dialog = screen.getByRole('dialog', { name: 'Report this stranger' });
    const radios = within(dialog).getAllByRole('radio');
    expect(radios.map((r) => (r as HTMLInputElement).value)).toEqual([
      'nudity',
      'harassment',
      'hate',
      'spam',
      'underage',
      'other',
    ]);
    // Keyboard first: the first reason has the focus, none is checked.
    expect(document.activeElement).toBe(radios[0]);
    expect(radios.some((r) => (r as HTMLInputElement).checked)).toBe(false);
    const confirm = screen.getByTestId<HTMLButtonElement>('report-confirm');
    expect(confirm.disabled).toBe(true);
    fireEvent.submit(dialog.querySelector('form')!);
    expect(a.report).not.toHaveBeenCalled();

    fireEvent.click(screen.getByLabelText('Harassment or threats'));
    expect(confirm.disabled).toBe(false);
    fireEvent.click(confirm);
    expect(a.report).toHaveBeenCalledExactlyOnceWith('harassment');
    expect(screen.queryByTestId('report-dialog')).toBeNull();
  });

  it('says plainly what goes to the operator: the picture only in a live video chat', () => {
    const a = actions();
    const { rerender } = render(<ChatScreen view={videoChat()} actions={a} />);
    fireEvent.click(screen.getByTestId('report'));
    expect(screen.getByTestId('report-notice').textContent).toBe(
      'A picture of the stranger’s video as it is now and the last messages of this chat go to the people who run this site. Reporting ends the chat.',
    );
    rerender(<ChatScreen view={view({ phase: 'chatting', room: 'r1' })} actions={a} />);
    expect(screen.getByTestId('report-notice').textContent).toBe(
      'The last messages of this chat go to the people who run this site. Reporting ends the chat.',
    );
    // A chat that ended: no picture, and it is over already.
    rerender(<ChatScreen view={view({ phase: 'ended', mode: 'video', room: 'r1', endReason: 'left' })} actions={a} />);
    expect(screen.getByTestId('report-notice').textContent).toBe(
      'The last messages of this chat go to the people who run this site.',
    );
  });

  it('Cancel and Esc close it without reporting, and Esc does not skip the stranger', () => {
    const a = actions();
    render(<ChatScreen view={view({ phase: 'chatting', room: 'r1' })} actions={a} />);
    fireEvent.click(screen.getByTestId('report'));
    fireEvent.click(screen.getByTestId('report-cancel'));
    expect(screen.queryByTestId('report-dialog')).toBeNull();
    fireEvent.click(screen.getByTestId('report'));
    fireEvent.keyDown(window, { key: 'Escape' });
    fireEvent.keyDown(window, { key: 'Escape' });
    expect(screen.queryByTestId('report-dialog')).toBeNull();
    expect(a.report).not.toHaveBeenCalled();
    expect(a.next).not.toHaveBeenCalled();
  });

  it('closes when there is nobody left to report', () => {
    const a = actions();
    const { rerender } = render(<ChatScreen view={view({ phase: 'chatting', room: 'r1' })} actions={a} />);
    fireEvent.click(screen.getByTestId('report'));
    rerender(<ChatScreen view={view({ phase: 'ended', room: 'r1', endReason: 'you-reported' })} actions={a} />);
    expect(screen.queryByTestId('report-dialog')).toBeNull();
  });

  it('passes axe', async () => {
    render(<ChatScreen view={view({ phase: 'chatting', room: 'r1' })} actions={actions()} />);
    fireEvent.click(screen.getByTestId('report'));
    const res = await axe.run(screen.getByTestId('report-dialog'), { rules: { 'color-contrast': { enabled: false } } });
    expect(res.violations.map((v) => v.id)).toEqual([]);
  });
});
