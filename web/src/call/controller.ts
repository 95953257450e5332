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
  type ReportedMsg,
  type SequencedServerMsg,
  type SignalMsg,
  type WelcomeMsg,
} from '../signaling/protocol';
import { Camera } from './camera';
import type { Evidence } from './evidence';
import { classifyMediaError } from './media';
import { PeerLink, type SignalData } from './peer';
import { parsePresence, Presence, type PresenceInfo } from './presence';
import { allowedActions, enterPhase, type PhaseEntry } from './phase';
import type { ReportReason } from './report';
import { Typing } from './typing';
import { initialView, type CallView } from './view';

/** The signaling client as the controller uses it (SignalingClient implements it). */
export interface SignalingLike {
  readonly status: LinkStatus;
  readonly session: string | null;
  connect(): void;
  send(msg: ClientMsg): number;
  /** Asks the server to confirm what it has (a heartbeat ping); a no-op without the heartbeat. */
  flush(): void;
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
  /** GET /api/online; null when unavailable. Polled only until the server pushes counts. */
  fetchOnline?: () => Promise<number | null>;
  onlinePollMs?: number;
  /** Where "Hide my IP" is remembered across reloads (localStorage). */
  storage?: Pick<Storage, 'getItem' | 'setItem'>;
  /** Captures and uploads a report's picture; without it reports carry none. */
  evidence?: Evidence;
}

/**
 * A report sent and not yet answered: the picture of the partner's video
 * taken when it was sent (null: a text chat, or no frame was shown), to be
 * uploaded with the token of the server's `reported`.
 */
interface PendingReport {
  picture: Promise<Blob | null> | null;
}

const PRIVACY_KEY = 'stranger.hideMyIP';

/**
 * The call's phase machine: owns the signaling client, the peer connection
 * (PeerLink) and the camera, and publishes a CallView. Plain TypeScript so it
 * can be tested without React; useStrangerCall wraps it for the UI.
 *
 * Every phase change goes through enter(), which resets the view (enterPhase)
 * and what belongs to the phase being left; every user action is refused
 * unless allowedActions allows it, the same rule that enables the buttons.
 */
export class CallController {
  private view: CallView = initialView;
  private readonly listeners = new Set<(v: CallView) => void>();
  private readonly signaling: SignalingLike;
  private readonly camera: Camera;
  private readonly typing: Typing;
  private iceServers: IceServer[] = [];
  private interests: string[] = [];
  private peer: PeerLink | null = null;
  private livePeers = 0;
  /**
   * The last answer of deps.mediaAllowed (null: none yet). Asked on the landing
   * screen, so a click on Video can join at once instead of after a query.
   */
  private mediaAllowedHint: boolean | null = null;
  private pendingReport: PendingReport | null = null;
  private onlineTimer: ReturnType<typeof setInterval> | null = null;
  private readonly presence: Presence;
  /** What we last asked of the counts extension (watch); pushed counts arrived at least once. */
  private watching = false;
  private countsSeen = false;
  private lineId = 0;
  /** Bumped by every start/home so a late join decision of an old start is dropped. */
  private startEpoch = 0;
  private disposed = false;

  constructor(private readonly deps: CallDeps) {
    this.camera = new Camera(deps.getUserMedia);
    this.typing = new Typing(
      // Only a chat has a partner to tell; the false of a chat being left goes
      // out from enter(), before the phase changes.
      (typing) => {
        if (this.view.phase === 'chatting') this.signaling.send({ type: 'typing', typing });
      },
      (typing) => this.update({ strangerTyping: typing }),
    );
    this.presence = new Presence({
      local: () => {
        const { phase, link, mode, cameraOn, micOn } = this.view;
        if (phase !== 'chatting' || link !== 'open') return null;
        return { camera: mode === 'video' && cameraOn, mic: mode === 'video' && micOn };
      },
      send: (p) => this.sendSignal({ presence: p }),
      partner: () => this.view.partner,
      showPartner: (p) => this.update({ partner: p }),
      selfOk: () => this.view.link === 'open',
    });
    this.signaling = deps.createSignaling({
      onWelcome: (m, lost) => this.onWelcome(m, lost),
      onMessage: (m) => this.onMessage(m),
      onStatus: (s) => this.update({ link: s }),
      onAck: (seq) => this.onAck(seq),
      onEnded: (why) => {
        if (why === 'banned') this.banned();
      },
    });
  }

  // ---- subscription ----

  getView = (): CallView => this.view;

  subscribe = (fn: (v: CallView) => void): (() => void) => {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  };

  private update(patch: Partial<CallView>): void {
    // A patch that changes nothing publishes nothing: every new view is a
    // render of the chat screen, and renders are main-thread time taken from
    // the call while it connects (e.g. `waiting`, repeated ICE states).
    const keys = Object.keys(patch) as (keyof CallView)[];
    if (keys.every((k) => Object.is(this.view[k], patch[k]))) return;
    this.publish({ ...this.view, ...patch });
  }

  private publish(view: CallView): void {
    if (this.disposed) return;
    this.view = view;
    for (const fn of this.listeners) fn(this.view);
  }

  /**
   * The one way into a phase. Leaving a chat stops our typing notice (while
   * the partner can still get it) and the stranger's; ending a chat or the
   * search closes its peer connection; the landing screen turns the camera
   * off. The view is reset by enterPhase, in one published view.
   */
  private enter(e: PhaseEntry): void {
    if (this.view.phase === 'chatting' && e.phase !== 'chatting') this.typing.end();
    if (e.phase === 'ended' || e.phase === 'idle' || e.phase === 'banned') this.closePeer();
    if (e.phase === 'idle' || e.phase === 'banned') {
      this.startEpoch++;
      this.camera.stop();
    }
    this.presence.stop();
    this.publish({ ...enterPhase(this.view, e), localStream: this.camera.stream, pcCount: this.livePeers });
    if (e.phase === 'chatting') this.presence.start();
    this.watchCounts(e.phase !== 'chatting' && e.phase !== 'banned');
  }

  /** Counts are pushed while someone looks at them: on the landing page and while waiting, not in a chat. */
  private watchCounts(on: boolean, force = false): void {
    if (this.watching === on && !force) return;
    this.watching = on;
    if (this.signaling.status === 'open' || !on) this.signaling.send({ type: 'watch', counts: on });
  }

  /** The server has every frame up to seq: our lines up to it are sent. */
  private onAck(seq: number): void {
    if (!this.view.lines.some((l) => l.from === 'you' && l.delivery === 'pending' && l.seq <= seq)) return;
    this.update({
      lines: this.view.lines.map((l) =>
        l.from === 'you' && l.delivery === 'pending' && l.seq <= seq ? { ...l, delivery: 'sent' } : l,
      ),
    });
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
        if (this.countsSeen) return;
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
    this.camera.stop();
    this.typing.end();
    if (this.onlineTimer !== null) clearInterval(this.onlineTimer);
    this.onlineTimer = null;
    this.presence.stop();
    this.signaling.dispose();
    this.disposed = true;
    this.listeners.clear();
  }

  // ---- user actions ----

  setPrivacy(on: boolean): void {
    if (on && !this.view.turnAvailable) return;
    this.update({ privacy: on });
    try {
      this.deps.storage?.setItem(PRIVACY_KEY, on ? '1' : '0');
    } catch {
      /* storage full or disabled: remembered for this page only */
    }
  }

  private savedPrivacy(): boolean {
    try {
      return this.deps.storage?.getItem(PRIVACY_KEY) === '1';
    } catch {
      return false;
    }
  }

  /** Start looking for a stranger from the landing screen. */
  start(mode: Mode, interests: readonly string[]): void {
    if (this.view.phase !== 'idle' && this.view.phase !== 'ended') return;
    const epoch = ++this.startEpoch;
    this.interests = normalizeInterests(interests);
    this.update({ interests: this.interests });
    if (mode === 'text') {
      this.closePeer();
      this.camera.stop();
      this.join(mode);
      return;
    }
    const joinNow = (): void => {
      if (epoch === this.startEpoch && this.view.phase === 'starting') this.join();
    };
    this.enter({ phase: 'starting', mode });
    // Join in parallel with the camera when no permission prompt will show;
    // otherwise join once the camera is on, so nobody is matched with a person
    // still reading the prompt. The answer asked on the landing screen lets the
    // join go out first thing in this click: before the camera request, the
    // peer connection (whose creation blocks the page for tens of ms) and the
    // chat screen's first render, which all overlap the wait for a match.
    const joinAtOnce = this.camera.stream !== null || this.mediaAllowedHint === true;
    if (joinAtOnce) joinNow();
    const media = this.openCamera();
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
    if (!allowedActions(this.view).next) return;
    const { phase, mode } = this.view;
    this.enter({ phase: 'waiting' });
    // After a chat ended the server session is idle, and a session that was
    // replaced after a lost connection has no preferences to reuse: join again.
    this.signaling.send(phase === 'ended' ? this.joinMsg() : { type: 'next' });
    if (mode === 'video') this.preparePeer();
  }

  /**
   * End the chat (or the search) and go back to the landing page, which says
   * so; the camera and microphone are released (their tracks end).
   */
  stop(): void {
    if (!allowedActions(this.view).stop) return;
    const wasChatting = this.view.phase === 'chatting';
    this.home();
    if (wasChatting) this.update({ notice: 'You left the chat.' });
  }

  /** Back to the landing screen: leaves any chat and turns the camera off. */
  home(): void {
    const { phase } = this.view;
    // A banned page stays on its screen: nothing can be started from it.
    if (phase === 'banned') return;
    this.enter({ phase: 'idle' });
    if (phase === 'waiting' || phase === 'chatting') this.signaling.send({ type: 'leave' });
  }

  /**
   * Report the stranger: ends a current chat, or reports the one that just
   * ended. In a video chat the partner's current frame is copied first, while
   * the call is still up (ending the chat stops their video); it is uploaded
   * once the server answers with the report's evidence token.
   */
  report(reason: ReportReason): void {
    if (!allowedActions(this.view).report) return;
    const { phase, remoteStream } = this.view;
    const picture = phase === 'chatting' && remoteStream ? (this.deps.evidence?.capture(remoteStream) ?? null) : null;
    this.pendingReport = { picture };
    if (phase === 'chatting') this.enter({ phase: 'ended', endReason: 'you-reported', mediaError: null });
    this.signaling.send({ type: 'report', reason });
  }

  /** Sends a chat line; returns false when there is nothing to send or no chat. */
  sendChat(text: string): boolean {
    const t = text.trim();
    if (t === '' || !allowedActions(this.view).chat) return false;
    const clipped = codePoints(t) > MAX_CHAT_CODE_POINTS ? Array.from(t).slice(0, MAX_CHAT_CODE_POINTS).join('') : t;
    const seq = this.signaling.send({ type: 'chat', text: clipped });
    this.signaling.flush();
    this.typing.lineSent();
    this.update({ lines: [...this.view.lines, { id: ++this.lineId, from: 'you', text: clipped, seq, delivery: 'pending' }] });
    return true;
  }

  /** Call on every edit of the chat input: sends typing true/false, debounced. */
  inputChanged(text: string): void {
    if (allowedActions(this.view).chat) this.typing.input(text);
  }

  toggleMic(): void {
    if (!allowedActions(this.view).toggleMedia) return;
    const on = !this.view.micOn;
    this.camera.stream?.getAudioTracks().forEach((t) => (t.enabled = on));
    this.update({ micOn: on });
    this.presence.tell(true);
  }

  toggleCamera(): void {
    if (!allowedActions(this.view).toggleMedia) return;
    const on = !this.view.cameraOn;
    this.camera.stream?.getVideoTracks().forEach((t) => (t.enabled = on));
    this.update({ cameraOn: on });
    this.presence.tell(true);
  }

  /** After a camera/mic failure: chat by text instead. */
  continueInText(): void {
    if (!allowedActions(this.view).recoverMedia) return;
    this.home();
    this.start('text', this.interests);
  }

  /** While waiting: look in the other mode instead (nobody may be waiting in this one). */
  switchMode(): void {
    if (this.view.phase !== 'waiting') return;
    const to: Mode = this.view.mode === 'video' ? 'text' : 'video';
    this.home();
    this.start(to, this.interests);
  }

  /** After a camera/mic failure: ask again. */
  retryMedia(): void {
    if (!allowedActions(this.view).recoverMedia) return;
    this.home();
    this.start('video', this.interests);
  }

  // ---- signaling ----

  private joinMsg(): ClientMsg {
    return this.interests.length
      ? { type: 'join', mode: this.view.mode, interests: this.interests }
      : { type: 'join', mode: this.view.mode };
  }

  /** Joins the queue; mode when a start joins at once, without the starting phase. */
  private join(mode?: Mode): void {
    this.enter(mode ? { phase: 'waiting', mode } : { phase: 'waiting' });
    this.signaling.send(this.joinMsg());
  }

  private onWelcome(m: WelcomeMsg, lostSession: boolean): void {
    this.iceServers = m.iceServers;
    const turnAvailable = m.turn || hasTurn(m.iceServers);
    this.update({
      session: m.session,
      online: m.online,
      turnAvailable,
      privacy: turnAvailable && (this.view.privacy || (m.resumed ? false : this.savedPrivacy())),
    });
    // Counts for the landing page and the search; the subscription does not
    // survive a new session or a resume on another node, so ask every time.
    if (this.view.phase !== 'chatting') this.watchCounts(true, true);
    // Renewed TURN credentials for the call: a 1.1 server sends them in the
    // resumed chat, a 1.0 server in the welcome itself.
    this.peer?.setIceServers(m.chat?.iceServers ?? this.iceServers);
    // The partner heard nothing from us while we were away, and we nothing
    // from them: their silence so far is ours, not theirs.
    this.presence.heardNow();
    if (!lostSession) this.presence.tell(true);
    if (lostSession) {
      const { phase, mode } = this.view;
      if (phase === 'waiting' || phase === 'chatting') {
        this.enter({ phase: 'ended', endReason: 'session-lost', mediaError: null });
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
        if (this.view.phase === 'starting') this.enter({ phase: 'waiting' });
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
        if (this.view.phase === 'chatting') this.typing.stranger(m.typing);
        return;
      case 'peer_left':
        if (this.view.phase === 'chatting') {
          this.enter({ phase: 'ended', endReason: m.reason, mediaError: null });
          // Ready for "New chat" while the person reads that the stranger left.
          if (this.view.mode === 'video') this.preparePeer();
        }
        return;
      case 'counts':
        this.countsSeen = true;
        this.update({ online: m.online, waiting: m.waiting });
        return;
      case 'reported':
        this.onReported(m);
        return;
      case 'error':
        this.onError(m);
        return;
    }
  }

  private onReported(m: ReportedMsg): void {
    const pending = this.pendingReport;
    this.pendingReport = null;
    this.update({ notice: 'Thanks. The stranger was reported.' });
    const { evidence } = this.deps;
    const token = m.evidenceToken;
    if (!pending?.picture || !evidence || token === undefined) return;
    // The report stands whatever happens to its picture; a failed upload
    // is only mentioned, quietly, in the notice that thanked for the report.
    const failed = (): void => {
      if (this.view.notice === 'Thanks. The stranger was reported.') {
        this.update({ notice: 'Thanks. The stranger was reported (the picture could not be sent).' });
      }
    };
    void pending.picture
      .then((image) => (image ? evidence.upload(token, image) : true))
      .then(
        (ok) => {
          if (!ok) failed();
        },
        failed,
      );
  }

  /** The server refused this connection: the banned screen, the camera off, no more starts. */
  private banned(): void {
    if (this.view.phase === 'banned') return;
    this.pendingReport = null;
    this.enter({ phase: 'banned' });
  }

  private onError(m: ErrorMsg): void {
    switch (m.code) {
      case 'banned':
        this.banned();
        return;
      case 'overloaded':
        if (this.view.phase === 'waiting') this.enter({ phase: 'ended', endReason: null, mediaError: null });
        this.update({ notice: 'The server is busy right now. Try again in a moment.' });
        return;
      case 'rate_limited':
        if (this.view.phase === 'waiting') {
          // A join or next over the server's join/next budget: the server
          // did not queue this session, and a refused next left its chat
          // going. Leave it, so that the partner is told and both sides
          // agree that this chat has ended.
          this.signaling.send({ type: 'leave' });
          this.enter({ phase: 'ended', endReason: null, mediaError: null });
        }
        this.update({ notice: m.message || 'Slow down a little.' });
        return;
      case 'not_chatting':
        if (this.pendingReport) {
          this.pendingReport = null;
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
    const video = m.mode === 'video';
    this.enter({
      phase: 'chatting',
      mode: m.mode,
      room: m.room,
      initiator: m.initiator,
      commonInterests: m.commonInterests,
      connection: video ? 'connecting' : 'none',
      remoteStream: video ? this.deps.createMediaStream() : null,
    });
    if (!video) return;
    if (!this.peer) this.preparePeer();
    // Protocol 1.1: TURN credentials come with the match. The connection
    // made while waiting gathered with the welcome's servers (STUN); with
    // these the offer (or the answer) gathers relay candidates too.
    if (m.iceServers) this.peer?.setIceServers(m.iceServers);
    this.peer?.matched(m.initiator);
  }

  private onChat(m: ChatMsg): void {
    if (this.view.phase !== 'chatting') return;
    this.typing.strangerLine();
    // Anything from the partner shows they are there.
    this.presence.heardNow();
    this.update({ lines: [...this.view.lines, { id: ++this.lineId, from: 'stranger', text: m.text }] });
  }

  private onSignal(m: SignalMsg): void {
    if (this.view.phase !== 'chatting' || m.room !== this.view.room) return;
    const presence = parsePresence(m.data);
    if (presence) this.presence.receive(presence);
    else this.peer?.receive(m.data);
  }

  private sendSignal(data: SignalData | { presence: PresenceInfo }): void {
    const room = this.view.room;
    if (room === null || this.view.phase !== 'chatting') return;
    this.signaling.send({ type: 'signal', room, data });
  }

  // ---- peer connection and camera ----

  /** A fresh peer connection for the next chat; the old one (if any) is closed first. */
  private preparePeer(): void {
    this.closePeer();
    const pc = this.deps.createPeerConnection(PeerLink.config(this.iceServers, this.view.privacy));
    const peer: PeerLink = new PeerLink(pc, {
      sendSignal: (data) => this.sendSignal(data),
      remoteTrack: (track) => {
        const rs = this.view.remoteStream;
        // The <video> already shows this stream (set at the match): a track added
        // to it plays without a new object, which would restart the element.
        if (rs && !rs.getTracks().includes(track)) rs.addTrack(track);
      },
      connectionKind: (kind) => this.update({ connection: kind }),
      localStream: () => this.camera.stream,
    });
    this.peer = peer;
    this.livePeers++;
    this.update({ pcCount: this.livePeers });
  }

  /** Publishes nothing: every caller publishes the view that follows (pcCount included). */
  private closePeer(): void {
    const peer = this.peer;
    if (!peer) return;
    this.peer = null;
    peer.close();
    this.livePeers--;
  }

  /**
   * The camera for this start. On success its tracks go on the peer
   * connection; on failure the search (or chat) ends with the reason, and the
   * screen offers text chat or another try.
   */
  private openCamera(): Promise<MediaStream | null> {
    return this.camera.open().then(
      (stream) => {
        if (!stream) return null;
        stream.getAudioTracks().forEach((t) => (t.enabled = this.view.micOn));
        stream.getVideoTracks().forEach((t) => (t.enabled = this.view.cameraOn));
        this.update({ localStream: stream });
        this.peer?.attachLocalTracks();
        return stream;
      },
      (err: unknown) => {
        const { phase } = this.view;
        this.enter({ phase: 'ended', endReason: null, mediaError: classifyMediaError(err) });
        if (phase === 'waiting' || phase === 'chatting') this.signaling.send({ type: 'leave' });
        return null;
      },
    );
  }
}
