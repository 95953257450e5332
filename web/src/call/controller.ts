import type { LinkStatus, SignalingHandlers } from '../signaling/client';
import {
  codePoints,
  hasTurn,
  MAX_CHAT_CODE_POINTS,
  normalizeInterests,
  type ChatMsg,
  type ClientMsg,
  type ErrorMsg,
  type IceServer,
  type MatchedMsg,
  type Mode,
  type PeerLeftReason,
  type SequencedServerMsg,
  type SignalMsg,
  type WelcomeMsg,
} from '../signaling/protocol';
import { classifyMediaError, openUserMedia, type MediaErrorKind } from './media';

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

/** The signaling client as the controller uses it (SignalingClient implements it). */
export interface SignalingLike {
  readonly status: LinkStatus;
  readonly session: string | null;
  connect(): void;
  send(msg: ClientMsg): number;
  reconnectNow(): void;
  dispose(): void;
}

export interface CallDeps {
  createSignaling(handlers: SignalingHandlers): SignalingLike;
  createPeerConnection(config: RTCConfiguration): RTCPeerConnection;
  createMediaStream(): MediaStream;
  /** navigator.mediaDevices.getUserMedia; absent in an insecure context. */
  getUserMedia?: (c: MediaStreamConstraints) => Promise<MediaStream>;
  /** Resolves true when camera and mic are already allowed, so no prompt will show. */
  mediaAllowed?: () => Promise<boolean>;
  /**
   * Loads the browser's WebRTC engine without making a peer connection (no
   * network, no devices), so the first peer connection of a call is quick.
   */
  warmUpWebRTC?: () => void;
  /** GET /api/online; null when unavailable. */
  fetchOnline?: () => Promise<number | null>;
  onlinePollMs?: number;
}

const TYPING_IDLE_MS = 3000;
const TYPING_SAFETY_MS = 15_000;
const ICE_DISCONNECTED_GRACE_MS = 2500;
const ICE_RESTART_RETRY_MS = 4000;
const MAX_ICE_RESTARTS = 6;
const STATS_POLL_MS = 3000;

/** One RTCPeerConnection and what belongs to it; a fresh one per chat. */
interface Peer {
  pc: RTCPeerConnection;
  /** Remote candidates that came before the remote description. */
  held: RTCIceCandidateInit[];
  /** Serialises SDP and candidate work, so nothing races setRemoteDescription. */
  ops: Promise<void>;
  restarts: number;
  restartTimer: ReturnType<typeof setTimeout> | null;
  statsTimer: ReturnType<typeof setInterval> | null;
  negotiated: boolean;
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

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The call state machine: owns the signaling client, the peer connection and
 * the local media, and publishes a CallView. Plain TypeScript so it can be
 * tested without React; useStrangerCall wraps it for the UI.
 *
 * Negotiation has no glare by construction: only the side the server marked
 * `initiator` ever creates offers (the first one and every ICE restart).
 */
export class CallController {
  private view: CallView = initialView;
  private readonly listeners = new Set<(v: CallView) => void>();
  private readonly signaling: SignalingLike;
  private iceServers: IceServer[] = [];
  private interests: string[] = [];
  private peer: Peer | null = null;
  private livePeers = 0;
  private mediaPromise: Promise<MediaStream | null> | null = null;
  /**
   * The last answer of deps.mediaAllowed (null: none yet). Asked on the landing
   * screen, so a click on Video can join at once instead of after a query.
   */
  private mediaAllowedHint: boolean | null = null;
  private typingSent = false;
  private reportPending = false;
  private typingTimer: ReturnType<typeof setTimeout> | null = null;
  private typingSafetyTimer: ReturnType<typeof setTimeout> | null = null;
  private onlineTimer: ReturnType<typeof setInterval> | null = null;
  private lineId = 0;
  /** Bumped by every start/home so late media results of an old start are dropped. */
  private startEpoch = 0;
  private disposed = false;

  constructor(private readonly deps: CallDeps) {
    this.signaling = deps.createSignaling({
      onWelcome: (m, lost) => this.onWelcome(m, lost),
      onMessage: (m) => this.onMessage(m),
      onStatus: (s) => this.update({ link: s }),
    });
  }

  // ---- subscription ----

  getView = (): CallView => this.view;

  subscribe = (fn: (v: CallView) => void): (() => void) => {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  };

  private update(patch: Partial<CallView>): void {
    if (this.disposed) return;
    // A patch that changes nothing publishes nothing: every new view is a
    // render of the chat screen, and renders are main-thread time taken from
    // the call while it connects (e.g. `waiting`, repeated ICE states).
    const keys = Object.keys(patch) as (keyof CallView)[];
    if (keys.every((k) => Object.is(this.view[k], patch[k]))) return;
    this.view = { ...this.view, ...patch };
    for (const fn of this.listeners) fn(this.view);
  }

  // ---- lifecycle ----

  connect(): void {
    this.signaling.connect();
    // Both answers are ready before a click on Video needs them.
    void this.queryMediaAllowed();
    this.deps.warmUpWebRTC?.();
    const poll = this.deps.fetchOnline;
    if (poll && this.onlineTimer === null) {
      this.onlineTimer = setInterval(() => {
        poll().then(
          (n) => {
            if (n !== null) this.update({ online: n });
          },
          () => {},
        );
      }, this.deps.onlinePollMs ?? 10_000);
    }
  }

  /** Asks whether camera and mic are allowed already; remembers the answer. */
  private queryMediaAllowed(): Promise<boolean> {
    const ask = this.deps.mediaAllowed;
    if (!ask) return Promise.resolve(false);
    return ask().then(
      (ok) => {
        this.mediaAllowedHint = ok;
        return ok;
      },
      () => false,
    );
  }

  /** The browser is back online: the old socket is likely dead, so resume now. */
  networkOnline(): void {
    if (this.signaling.status !== 'open') this.signaling.reconnectNow();
  }

  /** Drops the signaling socket and resumes at once; the call is not touched. */
  reconnectSignaling(): void {
    this.signaling.reconnectNow();
  }

  dispose(): void {
    if (this.disposed) return;
    this.closePeer();
    this.stopMedia();
    this.clearTyping();
    this.clearTypingSafety();
    if (this.onlineTimer !== null) clearInterval(this.onlineTimer);
    this.onlineTimer = null;
    this.signaling.dispose();
    this.disposed = true;
    this.listeners.clear();
  }

  // ---- user actions ----

  setPrivacy(on: boolean): void {
    if (on && !this.view.turnAvailable) return;
    this.update({ privacy: on });
  }

  /** Start looking for a stranger from the landing screen. */
  start(mode: Mode, interests: readonly string[]): void {
    if (this.view.phase !== 'idle' && this.view.phase !== 'ended') return;
    const epoch = ++this.startEpoch;
    this.interests = normalizeInterests(interests);
    this.update({
      mode,
      lines: [],
      endReason: null,
      mediaError: null,
      notice: null,
      commonInterests: [],
      room: null,
      strangerTyping: false,
      connection: 'none',
      remoteStream: null,
    });
    if (mode === 'text') {
      this.closePeer();
      this.stopMedia();
      this.join();
      return;
    }
    const joinNow = (): void => {
      if (epoch === this.startEpoch && this.view.phase === 'starting') this.join();
    };
    this.update({ phase: 'starting' });
    // Join in parallel with the camera when no permission prompt will show;
    // otherwise join once the camera is on, so nobody is matched with a person
    // still reading the prompt. The answer asked on the landing screen lets the
    // join go out first thing in this click: before the camera request, the
    // peer connection (whose creation blocks the page for tens of ms) and the
    // chat screen's first render, which all overlap the wait for a match.
    const joinAtOnce = this.view.localStream !== null || this.mediaAllowedHint === true;
    if (joinAtOnce) joinNow();
    const media = this.ensureMedia();
    // The peer connection exists before the match, so `matched` goes straight to
    // an offer (or the offer straight to an answer).
    this.preparePeer();
    if (joinAtOnce) return;
    void this.queryMediaAllowed().then((ok) => {
      if (ok) joinNow();
    });
    void media.then((stream) => {
      if (stream) joinNow();
    });
  }

  /** Skip to the next stranger, or start a new search after a chat ended. */
  next(): void {
    const { phase, mode, mediaError } = this.view;
    if (phase !== 'chatting' && phase !== 'ended') return;
    if (mode === 'video' && mediaError) return;
    this.clearTyping();
    // After a chat ended the server session is idle, and a session that was
    // replaced after a lost connection has no preferences to reuse: join again.
    if (phase === 'ended') {
      this.signaling.send(this.joinMsg());
    } else {
      this.signaling.send({ type: 'next' });
    }
    if (mode === 'video') this.preparePeer();
    this.update({
      phase: 'waiting',
      lines: [],
      endReason: null,
      notice: null,
      room: null,
      commonInterests: [],
      strangerTyping: false,
      connection: 'none',
      remoteStream: null,
    });
  }

  /** End the chat (or the search) and stay on the chat screen. */
  stop(): void {
    const { phase } = this.view;
    if (phase === 'starting') {
      // Never joined: nothing to leave; go back rather than sit on an empty chat.
      this.home();
      return;
    }
    if (phase !== 'waiting' && phase !== 'chatting') return;
    this.signaling.send({ type: 'leave' });
    this.endChat('you-left');
  }

  /** Back to the landing screen: leaves any chat and turns the camera off. */
  home(): void {
    const { phase } = this.view;
    if (phase === 'waiting' || phase === 'chatting') this.signaling.send({ type: 'leave' });
    this.startEpoch++;
    this.clearTyping();
    this.closePeer();
    this.stopMedia();
    this.update({
      phase: 'idle',
      endReason: null,
      lines: [],
      room: null,
      strangerTyping: false,
      connection: 'none',
      remoteStream: null,
      mediaError: null,
      notice: null,
    });
  }

  /** Report the stranger: ends a current chat, or reports the one that just ended. */
  report(): void {
    const { phase } = this.view;
    if (phase === 'chatting') {
      this.reportPending = true;
      this.signaling.send({ type: 'report' });
      this.endChat('you-reported');
    } else if (phase === 'ended' || phase === 'waiting') {
      this.reportPending = true;
      this.signaling.send({ type: 'report' });
    }
  }

  /** Sends a chat line; returns false when there is nothing to send or no chat. */
  sendChat(text: string): boolean {
    const t = text.trim();
    if (t === '' || this.view.phase !== 'chatting') return false;
    const clipped = codePoints(t) > MAX_CHAT_CODE_POINTS ? Array.from(t).slice(0, MAX_CHAT_CODE_POINTS).join('') : t;
    this.signaling.send({ type: 'chat', text: clipped });
    // The partner clears "typing" on the chat itself; no typing:false needed.
    if (this.typingTimer !== null) clearTimeout(this.typingTimer);
    this.typingTimer = null;
    this.typingSent = false;
    this.addLine('you', clipped);
    return true;
  }

  /** Call on every edit of the chat input: sends typing true/false, debounced. */
  inputChanged(text: string): void {
    if (this.view.phase !== 'chatting') return;
    if (text.trim() === '') {
      this.clearTyping();
      return;
    }
    if (!this.typingSent) {
      this.typingSent = true;
      this.signaling.send({ type: 'typing', typing: true });
    }
    if (this.typingTimer !== null) clearTimeout(this.typingTimer);
    this.typingTimer = setTimeout(() => {
      this.typingTimer = null;
      this.clearTyping();
    }, TYPING_IDLE_MS);
  }

  toggleMic(): void {
    const on = !this.view.micOn;
    this.view.localStream?.getAudioTracks().forEach((t) => (t.enabled = on));
    this.update({ micOn: on });
  }

  toggleCamera(): void {
    const on = !this.view.cameraOn;
    this.view.localStream?.getVideoTracks().forEach((t) => (t.enabled = on));
    this.update({ cameraOn: on });
  }

  /** After a camera/mic failure: chat by text instead. */
  continueInText(): void {
    this.home();
    this.start('text', this.interests);
  }

  /** After a camera/mic failure: ask again. */
  retryMedia(): void {
    this.home();
    this.start('video', this.interests);
  }

  // ---- signaling ----

  private joinMsg(): ClientMsg {
    return this.interests.length
      ? { type: 'join', mode: this.view.mode, interests: this.interests }
      : { type: 'join', mode: this.view.mode };
  }

  private join(): void {
    this.signaling.send(this.joinMsg());
    this.update({ phase: 'waiting' });
  }

  private onWelcome(m: WelcomeMsg, lostSession: boolean): void {
    this.iceServers = m.iceServers;
    const turnAvailable = hasTurn(m.iceServers);
    this.update({
      session: m.session,
      online: m.online,
      turnAvailable,
      privacy: turnAvailable && this.view.privacy,
    });
    // Fresh TURN credentials for the current connection (they are short-lived).
    const pc = this.peer?.pc;
    if (pc) {
      try {
        pc.setConfiguration({ ...pc.getConfiguration(), iceServers: this.iceServers });
      } catch {
        /* some browsers refuse changes after negotiation; the old ones still work */
      }
    }
    if (lostSession) {
      const { phase, mode } = this.view;
      if (phase === 'waiting' || phase === 'chatting') {
        this.endChat('session-lost');
        this.update({ notice: 'The connection to the server was lost. Start a new chat when ready.' });
      } else if (phase === 'starting') {
        // We never joined: nothing was lost but the join, which goes out below.
        return;
      }
      if (mode === 'video' && this.view.phase !== 'idle') this.preparePeer();
    }
  }

  private onMessage(m: SequencedServerMsg): void {
    switch (m.type) {
      case 'waiting':
        if (this.view.phase === 'waiting' || this.view.phase === 'starting') this.update({ phase: 'waiting' });
        return;
      case 'matched':
        this.onMatched(m);
        return;
      case 'signal':
        this.onSignal(m);
        return;
      case 'chat':
        this.onChat(m);
        return;
      case 'typing':
        if (this.view.phase !== 'chatting') return;
        this.clearTypingSafety();
        if (m.typing) {
          this.typingSafetyTimer = setTimeout(() => this.update({ strangerTyping: false }), TYPING_SAFETY_MS);
        }
        this.update({ strangerTyping: m.typing });
        return;
      case 'peer_left':
        if (this.view.phase === 'chatting') {
          this.endChat(m.reason);
          if (this.view.mode === 'video') this.preparePeer();
        }
        return;
      case 'reported':
        this.reportPending = false;
        this.update({ notice: 'Thanks. The stranger was reported.' });
        return;
      case 'error':
        this.onError(m);
        return;
    }
  }

  private onError(m: ErrorMsg): void {
    switch (m.code) {
      case 'overloaded':
      case 'banned':
        if (this.view.phase === 'waiting') this.endChat(null);
        this.update({
          notice:
            m.code === 'banned'
              ? 'You can’t start new chats right now.'
              : 'The server is busy right now. Try again in a moment.',
        });
        return;
      case 'rate_limited':
        this.update({ notice: 'Slow down a little.' });
        return;
      case 'not_chatting':
        if (this.reportPending) {
          this.reportPending = false;
          this.update({ notice: 'There is no recent chat to report.' });
        }
        // Otherwise a late frame of a chat that already ended.
        return;
      default:
        // bad_state: a join that raced the server's own state change.
        return;
    }
  }

  private onMatched(m: MatchedMsg): void {
    if (this.view.phase !== 'waiting' && this.view.phase !== 'starting') return;
    this.clearTypingSafety();
    this.update({
      phase: 'chatting',
      mode: m.mode,
      room: m.room,
      initiator: m.initiator,
      commonInterests: m.commonInterests,
      endReason: null,
      lines: [],
      strangerTyping: false,
      notice: null,
      connection: m.mode === 'video' ? 'connecting' : 'none',
      remoteStream: m.mode === 'video' ? this.deps.createMediaStream() : null,
    });
    if (m.mode !== 'video') return;
    if (!this.peer) this.preparePeer();
    if (m.initiator) this.offer(false);
  }

  private onChat(m: ChatMsg): void {
    if (this.view.phase !== 'chatting') return;
    this.clearTypingSafety();
    this.update({ strangerTyping: false });
    this.addLine('stranger', m.text);
  }

  private onSignal(m: SignalMsg): void {
    const peer = this.peer;
    if (!peer || this.view.phase !== 'chatting' || m.room !== this.view.room) return;
    const d = m.data;
    if (!isObject(d)) return;
    if (isObject(d.sdp) && (d.sdp.type === 'offer' || d.sdp.type === 'answer') && typeof d.sdp.sdp === 'string') {
      const desc: RTCSessionDescriptionInit = { type: d.sdp.type, sdp: d.sdp.sdp };
      this.enqueue(peer, () => this.applyRemoteDescription(peer, desc));
    } else if ('candidate' in d) {
      if (!isObject(d.candidate)) return; // null: end of candidates; nothing to do.
      const cand = d.candidate as RTCIceCandidateInit;
      this.enqueue(peer, async () => {
        if (!peer.pc.remoteDescription) {
          peer.held.push(cand);
          return;
        }
        await peer.pc.addIceCandidate(cand).catch(() => {});
      });
    }
  }

  private sendSignal(data: { sdp: RTCSessionDescriptionInit } | { candidate: RTCIceCandidateInit | null }): void {
    const room = this.view.room;
    if (room === null || this.view.phase !== 'chatting') return;
    this.signaling.send({ type: 'signal', room, data });
  }

  // ---- WebRTC ----

  /** A fresh peer connection for the next chat; the old one (if any) is closed first. */
  private preparePeer(): void {
    this.closePeer();
    const config: RTCConfiguration = {
      iceServers: this.iceServers as RTCIceServer[],
      iceTransportPolicy: this.view.privacy ? 'relay' : 'all',
      bundlePolicy: 'max-bundle',
      // Gather candidates (and allocate the TURN relay) now, while waiting,
      // rather than after the match: the pool is what the offer then uses.
      iceCandidatePoolSize: 1,
    };
    const pc = this.deps.createPeerConnection(config);
    this.livePeers++;
    const peer: Peer = {
      pc,
      held: [],
      ops: Promise.resolve(),
      restarts: 0,
      restartTimer: null,
      statsTimer: null,
      negotiated: false,
    };
    this.peer = peer;
    pc.onicecandidate = (ev) => {
      if (this.peer !== peer) return;
      this.sendSignal({ candidate: ev.candidate ? ev.candidate.toJSON() : null });
    };
    pc.ontrack = (ev) => {
      if (this.peer !== peer) return;
      const rs = this.view.remoteStream;
      // The <video> already shows this stream (set at the match): a track added
      // to it plays without a new object, which would restart the element.
      if (rs && !rs.getTracks().includes(ev.track)) rs.addTrack(ev.track);
    };
    pc.oniceconnectionstatechange = () => {
      if (this.peer !== peer) return;
      this.onIceState(peer);
    };
    this.update({ pcCount: this.livePeers });
  }

  private closePeer(): void {
    const peer = this.peer;
    if (!peer) return;
    this.peer = null;
    if (peer.restartTimer !== null) clearTimeout(peer.restartTimer);
    if (peer.statsTimer !== null) clearInterval(peer.statsTimer);
    peer.pc.onicecandidate = null;
    peer.pc.ontrack = null;
    peer.pc.oniceconnectionstatechange = null;
    peer.pc.close();
    this.livePeers--;
    this.update({ pcCount: this.livePeers });
  }

  private enqueue(peer: Peer, op: () => Promise<void>): void {
    peer.ops = peer.ops.then(async () => {
      if (this.peer !== peer) return;
      try {
        await op();
      } catch (err) {
        // A failed negotiation step leaves ICE to fail, which the initiator repairs
        // with a restart; nothing the user can act on, so log it for developers.
        console.warn('stranger: negotiation step failed', err);
      }
    });
  }

  /**
   * Initiator only: the first offer, or an ICE restart.
   *
   * Every step that the other side waits for is one call: setLocalDescription()
   * without an argument creates the offer itself (no round trip through the
   * page's busy main thread between createOffer and setLocalDescription), and
   * the local tracks go on the senders after the offer is out, since the SDP
   * does not depend on them.
   */
  private offer(iceRestart: boolean): void {
    const peer = this.peer;
    if (!peer || !this.view.initiator) return;
    this.enqueue(peer, async () => {
      const pc = peer.pc;
      if (!peer.negotiated) {
        peer.negotiated = true;
        pc.addTransceiver('audio', { direction: 'sendrecv' });
        pc.addTransceiver('video', { direction: 'sendrecv' });
      }
      if (pc.signalingState !== 'stable') return;
      if (iceRestart) pc.restartIce();
      await pc.setLocalDescription();
      if (this.peer !== peer) return;
      this.sendLocalDescription(pc);
      this.attachLocalTracks(peer);
    });
  }

  private async applyRemoteDescription(peer: Peer, desc: RTCSessionDescriptionInit): Promise<void> {
    const pc = peer.pc;
    if (desc.type === 'offer') {
      if (this.view.initiator) return; // never happens with a correct partner; no glare
      await pc.setRemoteDescription(desc);
      if (this.peer !== peer) return;
      this.addHeldCandidates(peer);
      if (!peer.negotiated) {
        peer.negotiated = true;
        for (const t of pc.getTransceivers()) t.direction = 'sendrecv';
      }
      await pc.setLocalDescription(); // the answer
      if (this.peer !== peer) return;
      this.sendLocalDescription(pc);
      this.attachLocalTracks(peer);
    } else {
      if (!this.view.initiator || pc.signalingState !== 'have-local-offer') return;
      await pc.setRemoteDescription(desc);
      if (this.peer !== peer) return;
      this.addHeldCandidates(peer);
    }
  }

  private sendLocalDescription(pc: RTCPeerConnection): void {
    const local = pc.localDescription;
    if (local) this.sendSignal({ sdp: { type: local.type, sdp: local.sdp } });
  }

  /**
   * Remote candidates that came before the remote description, in order. Not
   * awaited: the peer connection runs its operations in the order they were
   * called, so the next negotiation step need not wait for a round trip each.
   */
  private addHeldCandidates(peer: Peer): void {
    for (const c of peer.held.splice(0)) peer.pc.addIceCandidate(c).catch(() => {});
  }

  /**
   * Puts the local tracks on the senders, off the negotiation path: the camera
   * may start after the offer (we join while it warms up), and replaceTrack
   * needs no renegotiation, so this runs after each description is sent and
   * again when the camera is ready.
   */
  private attachLocalTracks(peer: Peer): void {
    const stream = this.view.localStream;
    if (!stream || !peer.negotiated || this.peer !== peer) return;
    for (const t of peer.pc.getTransceivers()) {
      const kind = t.receiver.track?.kind;
      if (!kind || t.sender.track) continue;
      const track = kind === 'audio' ? stream.getAudioTracks()[0] : stream.getVideoTracks()[0];
      // Rejects only when the connection was closed meanwhile: nothing to do then.
      if (track) t.sender.replaceTrack(track).catch(() => {});
    }
  }

  private onIceState(peer: Peer): void {
    const state = peer.pc.iceConnectionState;
    switch (state) {
      case 'connected':
      case 'completed':
        if (peer.restartTimer !== null) clearTimeout(peer.restartTimer);
        peer.restartTimer = null;
        peer.restarts = 0;
        void this.readConnectionKind(peer);
        if (peer.statsTimer === null) {
          peer.statsTimer = setInterval(() => void this.readConnectionKind(peer), STATS_POLL_MS);
        }
        return;
      case 'disconnected':
        this.update({ connection: 'connecting' });
        // Often recovers by itself within a second or two; restart only if not.
        this.scheduleIceRestart(peer, ICE_DISCONNECTED_GRACE_MS);
        return;
      case 'failed':
        this.update({ connection: 'connecting' });
        this.scheduleIceRestart(peer, 0);
        return;
      default:
        if (this.view.phase === 'chatting' && this.view.mode === 'video') this.update({ connection: 'connecting' });
    }
  }

  private scheduleIceRestart(peer: Peer, delay: number): void {
    if (!this.view.initiator || peer.restartTimer !== null) return;
    peer.restartTimer = setTimeout(() => {
      peer.restartTimer = null;
      if (this.peer !== peer) return;
      const s = peer.pc.iceConnectionState;
      if (s !== 'disconnected' && s !== 'failed') return;
      if (peer.restarts >= MAX_ICE_RESTARTS) return;
      peer.restarts++;
      this.offer(true);
      // If this restart does not take either, try again.
      this.scheduleIceRestart(peer, ICE_RESTART_RETRY_MS);
    }, delay);
  }

  /** direct or relay, from the local candidate of the selected candidate pair. */
  private async readConnectionKind(peer: Peer): Promise<void> {
    let stats: RTCStatsReport;
    try {
      stats = await peer.pc.getStats();
    } catch {
      return;
    }
    if (this.peer !== peer) return;
    const kind = selectedCandidateType(stats);
    if (kind === null) return;
    this.update({ connection: kind === 'relay' ? 'relay' : 'direct' });
  }

  // ---- media ----

  private ensureMedia(): Promise<MediaStream | null> {
    if (this.view.localStream) return Promise.resolve(this.view.localStream);
    if (this.mediaPromise) return this.mediaPromise;
    const epoch = this.startEpoch;
    const gum = this.deps.getUserMedia;
    const opened = gum
      ? openUserMedia(gum)
      : Promise.reject(Object.assign(new Error('no mediaDevices'), { name: 'InsecureContext' }));
    const p = opened.then(
      (stream) => {
        if (this.mediaPromise === p) this.mediaPromise = null;
        if (this.disposed || epoch !== this.startEpoch) {
          stream.getTracks().forEach((t) => t.stop());
          return null;
        }
        stream.getAudioTracks().forEach((t) => (t.enabled = this.view.micOn));
        stream.getVideoTracks().forEach((t) => (t.enabled = this.view.cameraOn));
        this.update({ localStream: stream });
        if (this.peer) this.attachLocalTracks(this.peer);
        return stream;
      },
      (err: unknown) => {
        if (this.mediaPromise === p) this.mediaPromise = null;
        if (this.disposed || epoch !== this.startEpoch) return null;
        const { phase } = this.view;
        if (phase === 'waiting' || phase === 'chatting') this.signaling.send({ type: 'leave' });
        this.closePeer();
        this.update({
          phase: 'ended',
          endReason: null,
          mediaError: classifyMediaError(err),
          room: null,
          connection: 'none',
          remoteStream: null,
        });
        return null;
      },
    );
    this.mediaPromise = p;
    return p;
  }

  private stopMedia(): void {
    this.mediaPromise = null;
    const s = this.view.localStream;
    if (s) {
      s.getTracks().forEach((t) => t.stop());
      this.update({ localStream: null });
    }
  }

  // ---- helpers ----

  private endChat(reason: EndReason | null): void {
    this.clearTyping();
    this.clearTypingSafety();
    this.closePeer();
    this.update({
      phase: 'ended',
      endReason: reason,
      strangerTyping: false,
      connection: 'none',
      remoteStream: null,
    });
  }

  private clearTyping(): void {
    if (this.typingTimer !== null) clearTimeout(this.typingTimer);
    this.typingTimer = null;
    if (this.typingSent) {
      this.typingSent = false;
      if (this.view.phase === 'chatting') this.signaling.send({ type: 'typing', typing: false });
    }
  }

  private clearTypingSafety(): void {
    if (this.typingSafetyTimer !== null) clearTimeout(this.typingSafetyTimer);
    this.typingSafetyTimer = null;
  }

  private addLine(from: ChatLine['from'], text: string): void {
    this.update({ lines: [...this.view.lines, { id: ++this.lineId, from, text }] });
  }
}

/** The candidateType of the local candidate of the selected pair, or null if none yet. */
export function selectedCandidateType(stats: RTCStatsReport): string | null {
  let pair: Record<string, unknown> | undefined;
  stats.forEach((r: Record<string, unknown>) => {
    if (pair) return;
    if (r.type === 'transport' && typeof r.selectedCandidatePairId === 'string') {
      pair = stats.get(r.selectedCandidatePairId) as Record<string, unknown> | undefined;
    }
  });
  if (!pair) {
    stats.forEach((r: Record<string, unknown>) => {
      if (pair) return;
      // Firefox marks the pair with `selected`; otherwise the nominated, succeeded one.
      if (r.type === 'candidate-pair' && (r.selected === true || (r.nominated === true && r.state === 'succeeded'))) {
        pair = r;
      }
    });
  }
  if (!pair || typeof pair.localCandidateId !== 'string') return null;
  const local = stats.get(pair.localCandidateId) as Record<string, unknown> | undefined;
  return local && typeof local.candidateType === 'string' ? local.candidateType : null;
}
