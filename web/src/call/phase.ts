import type { Mode } from '../signaling/protocol';
import type { MediaErrorKind } from './media';
import type { CallView, Connection, EndReason } from './view';

/**
 * A phase to enter, with what only that entry knows. Every field of the view
 * that belongs to a chat is either reset by the entry or given by it, so a
 * phase never shows a field left over from the phase before.
 */
export type PhaseEntry =
  | { phase: 'idle' }
  | { phase: 'starting'; mode: Mode }
  /** mode: when a start joins at once (text), without passing through starting. */
  | { phase: 'waiting'; mode?: Mode }
  | {
      phase: 'chatting';
      mode: Mode;
      room: string;
      initiator: boolean;
      commonInterests: string[];
      connection: Connection;
      remoteStream: MediaStream | null;
    }
  | { phase: 'ended'; endReason: EndReason | null; mediaError: MediaErrorKind | null }
  | { phase: 'banned' };

/** Before a chat: nothing of the last chat or search is shown any more. */
const fresh = {
  lines: [],
  endReason: null,
  mediaError: null,
  notice: null,
  room: null,
  commonInterests: [],
  strangerTyping: false,
  partner: null,
  connection: 'none',
  remoteStream: null,
} as const satisfies Partial<CallView>;

/**
 * The view after entering a phase. idle, starting and waiting start clean;
 * chatting starts a new log with the match's facts; ended keeps the log, the
 * room and the notice (the last chat stays readable, and reportable) but drops
 * what only a live chat has: the stranger's video, typing and connection.
 */
export function enterPhase(view: CallView, e: PhaseEntry): CallView {
  switch (e.phase) {
    case 'idle':
      return { ...view, ...fresh, phase: 'idle' };
    case 'banned':
      return { ...view, ...fresh, phase: 'banned' };
    case 'starting':
    case 'waiting':
      return { ...view, ...fresh, phase: e.phase, mode: e.mode ?? view.mode };
    case 'chatting':
      return {
        ...view,
        lines: [],
        endReason: null,
        mediaError: null,
        notice: null,
        strangerTyping: false,
        partner: null,
        phase: 'chatting',
        mode: e.mode,
        room: e.room,
        initiator: e.initiator,
        commonInterests: e.commonInterests,
        connection: e.connection,
        remoteStream: e.remoteStream,
      };
    case 'ended':
      return {
        ...view,
        strangerTyping: false,
        partner: null,
        connection: 'none',
        remoteStream: null,
        phase: 'ended',
        endReason: e.endReason,
        mediaError: e.mediaError,
      };
  }
}

/** What a person may do in a view: the controller's guards and the buttons both ask this. */
export interface AllowedActions {
  /** Skip to the next stranger, or start a new search after a chat ended. */
  next: boolean;
  /** End the chat or the search (or give up waiting for the camera) and go home; after a chat ended, go home. */
  stop: boolean;
  /** Report the current stranger, or the one of the chat that just ended. */
  report: boolean;
  /** Type and send chat lines. */
  chat: boolean;
  /** Turn the microphone or the camera on and off. */
  toggleMedia: boolean;
  /** After a camera failure: try again, or continue by text. */
  recoverMedia: boolean;
}

export function allowedActions(v: Pick<CallView, 'phase' | 'mode' | 'endReason' | 'mediaError'>): AllowedActions {
  const { phase, endReason, mediaError } = v;
  return {
    // Without the camera a video search cannot go on; the error offers the way out.
    next: (phase === 'chatting' || phase === 'ended') && mediaError === null,
    stop: phase === 'starting' || phase === 'waiting' || phase === 'chatting' || phase === 'ended',
    // Only a stranger one has met: the current one, or the one of the chat
    // that just ended (however it ended, unless reported already); not while
    // waiting, where there is nobody to report.
    report: phase === 'chatting' || (phase === 'ended' && endReason !== null && endReason !== 'you-reported'),
    chat: phase === 'chatting',
    toggleMedia: v.mode === 'video' && mediaError === null && phase !== 'banned',
    recoverMedia: mediaError !== null,
  };
}
