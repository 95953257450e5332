// Stranger signaling protocol, version 1: every message type, written once.
// Keep in step with docs/protocol.md (the server implements it exactly).

export type Mode = 'video' | 'text';
export type SessionState = 'idle' | 'waiting' | 'chatting';
export type PeerLeftReason = 'next' | 'left' | 'disconnected' | 'reported';

export type ErrorCode =
  | 'bad_message'
  | 'unknown_type'
  | 'bad_state'
  | 'not_chatting'
  | 'too_long'
  | 'rate_limited'
  | 'banned'
  | 'overloaded'
  | 'pow_required'
  // A server may add codes.
  | (string & {});

/**
 * The JSON value carried by `signal`: by convention an SDP or an ICE
 * candidate, or the sender's presence (docs/protocol.md, "Presence convention").
 */
export type SignalData =
  | { sdp: RTCSessionDescriptionInit }
  | { candidate: RTCIceCandidateInit | null }
  | { presence: { camera: boolean; mic: boolean } };

export interface IceServer {
  urls: string | string[];
  username?: string;
  credential?: string;
}

/** An ALTCHA challenge (protocol 1.1, "Proof of work"). */
export interface PowChallenge {
  algorithm: string;
  challenge: string;
  maxnumber: number;
  salt: string;
  signature: string;
}

export interface ChatInfo {
  room: string;
  initiator: boolean;
  mode: Mode;
  commonInterests: string[];
  /**
   * Protocol 1.1: the chat's ICE servers, TURN credentials included (in
   * `matched`, and in a resumed welcome's chat). Absent from a 1.0 server,
   * whose welcome.iceServers carries them.
   */
  iceServers?: IceServer[];
}

// ---- server -> client ----

export interface WelcomeMsg {
  type: 'welcome';
  session: string;
  resumeToken: string;
  resumed: boolean;
  iceServers: IceServer[];
  /** Protocol 1.1: TURN is offered; its credentials come with `matched`. */
  turn: boolean;
  online: number;
  /** Only on a resume. */
  state?: SessionState;
  chat?: ChatInfo;
  lastSeq?: number;
  /** A proof-of-work challenge, while the session owes one (1.1). */
  pow?: PowChallenge;
}

export interface WaitingMsg {
  type: 'waiting';
  seq: number;
}

export interface MatchedMsg extends ChatInfo {
  type: 'matched';
  seq: number;
}

export interface SignalMsg {
  type: 'signal';
  seq: number;
  room: string;
  data: unknown;
}

export interface ChatMsg {
  type: 'chat';
  seq: number;
  text: string;
}

export interface TypingMsg {
  type: 'typing';
  seq: number;
  typing: boolean;
}

export interface PeerLeftMsg {
  type: 'peer_left';
  seq: number;
  reason: PeerLeftReason;
}

export interface ReportedMsg {
  type: 'reported';
  seq: number;
  /** 1.1: the recorded report's id. */
  report?: string;
  /** 1.1: a one-time token for POST /api/evidence (120 s). */
  evidenceToken?: string;
}

/** The answer to a heartbeat ping (extension): the server processed every client frame up to `ack`. */
export interface PongMsg {
  type: 'pong';
  seq: number;
  ack: number;
}

/** The counts extension: sessions online and waiting per mode, deployment-wide. */
export interface CountsMsg {
  type: 'counts';
  seq: number;
  online: number;
  waiting: Record<Mode, number>;
}

export interface ErrorMsg {
  type: 'error';
  seq: number;
  code: ErrorCode;
  message: string;
  /** With pow_required: the fresh challenge to solve. */
  pow?: PowChallenge;
}

/** Every server frame that carries a `seq`. */
export type SequencedServerMsg =
  | WaitingMsg
  | MatchedMsg
  | SignalMsg
  | ChatMsg
  | TypingMsg
  | PeerLeftMsg
  | ReportedMsg
  | CountsMsg
  | ErrorMsg;

export type ServerMsg = WelcomeMsg | SequencedServerMsg | PongMsg;

// ---- client -> server ----
// `seq` is added by the signaling client when the frame is sent.

export type ClientMsg =
  | { type: 'join'; mode: Mode; interests?: string[]; pow?: string }
  | { type: 'next'; pow?: string }
  | { type: 'leave' }
  | { type: 'signal'; data: SignalData; room: string }
  | { type: 'chat'; text: string }
  | { type: 'typing'; typing: boolean }
  | { type: 'report'; reason?: string }
  | { type: 'watch'; counts: boolean };

export type ClientFrame = ClientMsg & { seq: number };

/** Protocol limits the client checks before sending, so it never gets too_long. */
export const MAX_CHAT_CODE_POINTS = 1000;
export const MAX_REPORT_CODE_POINTS = 500;
export const MAX_INTERESTS = 10;
export const MAX_INTEREST_CODE_POINTS = 32;

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

const isStringArray = (v: unknown): v is string[] =>
  Array.isArray(v) && v.every((s) => typeof s === 'string');

const isMode = (v: unknown): v is Mode => v === 'video' || v === 'text';

function parseChatInfo(o: Record<string, unknown>): ChatInfo | null {
  if (typeof o.room !== 'string' || typeof o.initiator !== 'boolean' || !isMode(o.mode)) {
    return null;
  }
  const common = o.commonInterests == null ? [] : o.commonInterests;
  if (!isStringArray(common)) return null;
  const chat: ChatInfo = { room: o.room, initiator: o.initiator, mode: o.mode, commonInterests: common };
  if (Array.isArray(o.iceServers)) chat.iceServers = parseIceServers(o.iceServers);
  return chat;
}

function parseIceServers(v: unknown[]): IceServer[] {
  return v.filter(isObject) as unknown as IceServer[];
}

function parsePowChallenge(v: unknown): PowChallenge | null {
  if (!isObject(v)) return null;
  const { algorithm, challenge, maxnumber, salt, signature } = v;
  if (
    typeof algorithm !== 'string' ||
    typeof challenge !== 'string' ||
    typeof maxnumber !== 'number' ||
    typeof salt !== 'string' ||
    typeof signature !== 'string'
  ) {
    return null;
  }
  return { algorithm, challenge, maxnumber, salt, signature };
}

/**
 * Parses one text frame from the server. Returns null for anything that is not
 * a well-formed message of a known type: a client must not trip over a server
 * that adds message types (extensions are allowed by the protocol).
 */
export function parseServerMsg(raw: string): ServerMsg | null {
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    return null;
  }
  if (!isObject(v) || typeof v.type !== 'string') return null;
  if (v.type === 'welcome') {
    if (typeof v.session !== 'string' || typeof v.resumeToken !== 'string') return null;
    const iceServers = Array.isArray(v.iceServers) ? parseIceServers(v.iceServers) : [];
    const msg: WelcomeMsg = {
      type: 'welcome',
      session: v.session,
      resumeToken: v.resumeToken,
      resumed: v.resumed === true,
      iceServers,
      turn: v.turn === true,
      online: typeof v.online === 'number' ? v.online : 0,
    };
    if (v.state === 'idle' || v.state === 'waiting' || v.state === 'chatting') msg.state = v.state;
    if (isObject(v.chat)) {
      const chat = parseChatInfo(v.chat);
      if (chat) msg.chat = chat;
    }
    if (typeof v.lastSeq === 'number') msg.lastSeq = v.lastSeq;
    const pow = parsePowChallenge(v.pow);
    if (pow) msg.pow = pow;
    return msg;
  }
  if (typeof v.seq !== 'number' || !Number.isInteger(v.seq)) return null;
  const seq = v.seq;
  switch (v.type) {
    case 'waiting':
      return { type: 'waiting', seq };
    case 'matched': {
      const chat = parseChatInfo(v);
      return chat ? { type: 'matched', seq, ...chat } : null;
    }
    case 'signal':
      return typeof v.room === 'string' ? { type: 'signal', seq, room: v.room, data: v.data } : null;
    case 'chat':
      return typeof v.text === 'string' ? { type: 'chat', seq, text: v.text } : null;
    case 'typing':
      return typeof v.typing === 'boolean' ? { type: 'typing', seq, typing: v.typing } : null;
    case 'peer_left':
      return v.reason === 'next' || v.reason === 'left' || v.reason === 'disconnected' || v.reason === 'reported'
        ? { type: 'peer_left', seq, reason: v.reason }
        : { type: 'peer_left', seq, reason: 'left' };
    case 'reported': {
      const msg: ReportedMsg = { type: 'reported', seq };
      if (typeof v.report === 'string') msg.report = v.report;
      if (typeof v.evidenceToken === 'string' && v.evidenceToken !== '') msg.evidenceToken = v.evidenceToken;
      return msg;
    }
    case 'counts': {
      const w = isObject(v.waiting) ? v.waiting : null;
      if (typeof v.online !== 'number' || !w || typeof w.video !== 'number' || typeof w.text !== 'number') return null;
      return { type: 'counts', seq, online: v.online, waiting: { video: w.video, text: w.text } };
    }
    case 'pong':
      return typeof v.ack === 'number' ? { type: 'pong', seq, ack: v.ack } : null;
    case 'error': {
      const msg: ErrorMsg = {
        type: 'error',
        seq,
        code: typeof v.code === 'string' ? v.code : 'unknown',
        message: typeof v.message === 'string' ? v.message : '',
      };
      const pow = parsePowChallenge(v.pow);
      if (pow) msg.pow = pow;
      return msg;
    }
    default:
      return null;
  }
}

/** Counts Unicode code points, as the protocol's limits do. */
export function codePoints(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

/**
 * Normalises interests exactly as protocol rule 2 does: trim, lower-case, drop
 * empty ones and ones over 32 code points, remove duplicates (first kept), keep
 * the first 10.
 */
export function normalizeInterests(raw: readonly string[]): string[] {
  const out: string[] = [];
  for (const r of raw) {
    const s = r.trim().toLowerCase();
    if (s === '' || codePoints(s) > MAX_INTEREST_CODE_POINTS) continue;
    if (out.includes(s)) continue;
    out.push(s);
    if (out.length === MAX_INTERESTS) break;
  }
  return out;
}

/** True when the list offers a TURN relay (needed for the "hide my IP" mode). */
export function hasTurn(servers: readonly IceServer[]): boolean {
  return servers.some((s) => {
    const urls = Array.isArray(s.urls) ? s.urls : [s.urls];
    return urls.some((u) => typeof u === 'string' && /^turns?:/i.test(u));
  });
}
