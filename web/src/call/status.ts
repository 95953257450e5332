import type { Mode } from '../signaling/protocol';
import type { CallView } from './view';

/** "music", "music and films", "music, films and cats". */
export function joinList(items: readonly string[]): string {
  if (items.length <= 1) return items[0] ?? '';
  return `${items.slice(0, -1).join(', ')} and ${items[items.length - 1]}`;
}

export interface StatusText {
  main: string;
  /** A second line, e.g. the interests both share. */
  sub?: string;
}

/** The status line of the chat screen, in the words people know from Omegle. */
export function statusText(
  v: Pick<CallView, 'phase' | 'endReason' | 'commonInterests' | 'mediaError'> &
    Partial<Pick<CallView, 'interests' | 'waiting' | 'mode'>>,
): StatusText {
  switch (v.phase) {
    case 'idle':
    case 'banned':
      return { main: '' };
    case 'starting':
      return { main: 'Starting your camera…' };
    case 'waiting':
      return v.waiting && v.mode
        ? { main: 'Looking for someone you can chat with…', sub: waitingText(v.waiting, v.mode) }
        : { main: 'Looking for someone you can chat with…' };
    case 'chatting':
      if (v.commonInterests.length) {
        return {
          main: "You're now chatting with a random stranger. Say hi!",
          sub: `You both like ${joinList(v.commonInterests)}.`,
        };
      }
      return v.interests?.length
        ? {
            main: "You're now chatting with a random stranger. Say hi!",
            sub: 'Nobody with your interests was around, so this stranger was picked at random.',
          }
        : { main: "You're now chatting with a random stranger. Say hi!" };
    case 'ended':
      switch (v.endReason) {
        case 'you-left':
          return { main: 'You have disconnected.' };
        case 'you-reported':
          return { main: 'You reported the stranger and left the chat.' };
        case 'session-lost':
          return { main: 'You have disconnected.', sub: 'The connection to the server was lost.' };
        case 'next':
        case 'left':
        case 'disconnected':
        case 'reported':
          return { main: 'Stranger has disconnected.' };
        default:
          return { main: v.mediaError ? 'Camera or microphone unavailable.' : 'Not chatting.' };
      }
  }
}

/**
 * What is pinned above the composer: how the chat ended, or that a live
 * chat is in trouble. tone: ended (the chat is over) or trouble (it may
 * recover). null: nothing to pin.
 */
export interface Pinned {
  kind: 'ended' | 'self-offline' | 'partner-lost';
  tone: 'ended' | 'trouble';
  text: string;
}

export function pinnedNotice(
  v: Pick<CallView, 'phase' | 'endReason' | 'commonInterests' | 'mediaError' | 'link' | 'partner'>,
): Pinned | null {
  if (v.phase === 'ended') {
    const s = statusText(v);
    return { kind: 'ended', tone: 'ended', text: `${s.main} Press New chat to meet someone new.` };
  }
  if (v.phase !== 'chatting') return null;
  if (v.link !== 'open') {
    return { kind: 'self-offline', tone: 'trouble', text: 'Your connection is lost. Reconnecting… Messages will be sent when you are back.' };
  }
  if (v.partner?.link === 'lost') {
    return { kind: 'partner-lost', tone: 'trouble', text: 'Stranger’s connection is lost. Wait, or press Next.' };
  }
  return null;
}

/** The chat box's placeholder: short enough for a phone's input. */
export function composerPlaceholder(v: Pick<CallView, 'phase'>): string {
  switch (v.phase) {
    case 'chatting':
      return 'Type a message…';
    case 'ended':
      return 'Chat ended';
    case 'waiting':
    case 'starting':
      return 'Waiting for a stranger…';
    case 'idle':
    case 'banned':
      return '';
  }
}

/** "Nobody else is looking for a video chat right now; 2 people wait for text." The counts include you. */
export function waitingText(waiting: Record<Mode, number>, mode: Mode): string {
  const other: Mode = mode === 'video' ? 'text' : 'video';
  const others = Math.max(0, waiting[mode] - 1);
  const here =
    others === 0
      ? `Nobody else is looking for a ${mode} chat right now`
      : `${others} ${others === 1 ? 'other person is' : 'other people are'} looking for a ${mode} chat`;
  const there = waiting[other];
  return `${here}; ${there} waiting for ${other}.`;
}
