import type { LinkStatus } from '../signaling/client';
import type { Mode, PeerLeftReason } from '../signaling/protocol';
import type { MediaErrorKind } from './media';

/**
 * idle: on the landing screen. starting: waiting for the camera before joining.
 * waiting: in the queue. chatting: matched. ended: a chat (or the search) ended;
 * still on the chat screen, ready for "New chat".
 */
export type Phase = 'idle' | 'starting' | 'waiting' | 'chatting' | 'ended';

/** What the connection indicator shows. */
export type Connection = 'none' | 'connecting' | 'direct' | 'relay';

export type EndReason = PeerLeftReason | 'you-left' | 'you-reported' | 'session-lost';

export interface ChatLine {
  id: number;
  from: 'you' | 'stranger';
  text: string;
}

/** Everything the UI renders. Replaced (never mutated) on every change. */
export interface CallView {
  link: LinkStatus;
  session: string | null;
  online: number | null;
  turnAvailable: boolean;
  privacy: boolean;
  phase: Phase;
  mode: Mode;
  room: string | null;
  initiator: boolean;
  commonInterests: string[];
  endReason: EndReason | null;
  lines: ChatLine[];
  strangerTyping: boolean;
  connection: Connection;
  localStream: MediaStream | null;
  remoteStream: MediaStream | null;
  micOn: boolean;
  cameraOn: boolean;
  mediaError: MediaErrorKind | null;
  notice: string | null;
  pcCount: number;
}

export const initialView: CallView = {
  link: 'connecting',
  session: null,
  online: null,
  turnAvailable: false,
  privacy: false,
  phase: 'idle',
  mode: 'video',
  room: null,
  initiator: false,
  commonInterests: [],
  endReason: null,
  lines: [],
  strangerTyping: false,
  connection: 'none',
  localStream: null,
  remoteStream: null,
  micOn: true,
  cameraOn: true,
  mediaError: null,
  notice: null,
  pcCount: 0,
};
