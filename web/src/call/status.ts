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
export function statusText(v: Pick<CallView, 'phase' | 'endReason' | 'commonInterests' | 'mediaError'>): StatusText {
  switch (v.phase) {
    case 'idle':
      return { main: '' };
    case 'starting':
      return { main: 'Starting your camera…' };
    case 'waiting':
      return { main: 'Looking for someone you can chat with…' };
    case 'chatting':
      return v.commonInterests.length
        ? {
            main: "You're now chatting with a random stranger. Say hi!",
            sub: `You both like ${joinList(v.commonInterests)}.`,
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
