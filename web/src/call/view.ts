import type { LinkStatus } from '../signaling/client';
import type { Mode, PeerLeftReason } from '../signaling/protocol';
import type { MediaErrorKind } from './media';

/**
 * idle: on the landing screen. starting: waiting for the camera before joining.
 * waiting: in the queue. chatting: matched. ended: a chat (or the search) ended;
 * still on the chat screen, ready for "New chat". banned: the server refused
 * this connection (error `banned`, or a close with 4003); nothing more can be
 * started from this page.
 */
export type Phase = 'idle' | 'starting' | 'waiting' | 'chatting' | 'ended' | 'banned';

/** What the connection indicator shows (see PeerConnectionKind). */
export type Connection = 'none' | 'connecting' | 'reconnecting' | 'stalled' | 'direct' | 'relay';

export type EndReason = PeerLeftReason | 'you-left' | 'you-reported' | 'session-lost';

/** pending: the server has not confirmed it yet (pong ack or resume); sent: it has. */
export type Delivery = 'pending' | 'sent';

export type ChatLine =
  | { id: number; from: 'stranger'; text: string }
  | { id: number; from: 'you'; text: string; seq: number; delivery: Delivery };

/**
 * The partner's state as their client tells it (presence convention,
 * docs/protocol.md). link: ok while their presence arrives; lost after
 * PRESENCE_LOST_MS without any (they are reconnecting, or gone).
 */
export interface PartnerState {
  camera: boolean;
  mic: boolean;
  link: 'ok' | 'lost';
}

/** Everything the UI renders. Replaced (never mutated) on every change. */
export interface CallView {
  link: LinkStatus;
  session: string | null;
  online: number | null;
  /** Sessions waiting per mode (counts extension); null until the server told. */
  waiting: Record<Mode, number> | null;
  /** The interests of the current search, as sent. */
  interests: string[];
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
  /** null until the partner's client sent its first presence (older clients never do). */
  partner: PartnerState | null;
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
  waiting: null,
  interests: [],
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
  partner: null,
  connection: 'none',
  localStream: null,
  remoteStream: null,
  micOn: true,
  cameraOn: true,
  mediaError: null,
  notice: null,
  pcCount: 0,
};
