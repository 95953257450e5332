import { backoffDelay, defaultBackoff, type BackoffOptions } from './backoff';
import { PowGate, workerSolver, type PowSolver } from './pow';
import {
  parseServerMsg,
  type ClientFrame,
  type ClientMsg,
  type SequencedServerMsg,
  type WelcomeMsg,
} from './protocol';

/** The part of the browser WebSocket the client uses, so tests can fake it. */
export interface SocketLike {
  readonly readyState: number;
  onopen: ((ev: Event) => unknown) | null;
  onmessage: ((ev: MessageEvent) => unknown) | null;
  onclose: ((ev: CloseEvent) => unknown) | null;
  onerror: ((ev: Event) => unknown) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

export type SocketFactory = (url: string) => SocketLike;

export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/**
 * connecting: first connection not yet welcomed. open: welcomed, frames flow.
 * reconnecting: the socket dropped; retrying with backoff. closed: disposed,
 * or the session was taken over by another connection.
 */
export type LinkStatus = 'connecting' | 'open' | 'reconnecting' | 'closed';

export interface SignalingHandlers {
  /** Every welcome, first or resumed. `lostSession` is true when a resume failed and a new session began. */
  onWelcome?(msg: WelcomeMsg, lostSession: boolean): void;
  /** Every sequenced server frame, once, in order (duplicates after a resume are dropped). */
  onMessage?(msg: SequencedServerMsg): void;
  onStatus?(status: LinkStatus): void;
  /**
   * The server has processed every client frame up to `seq` (a pong's ack,
   * or a resumed welcome's lastSeq).
   */
  onAck?(seq: number): void;
  /**
   * The server ended the session for good and the client will not reconnect:
   * another connection took it over (4001), or the connection's identity was
   * banned (4003). The status is 'closed' from then on.
   */
  onEnded?(why: EndedBy): void;
}

export type EndedBy = 'taken-over' | 'banned';

/**
 * The heartbeat extension (docs/protocol.md): a ping when the server has been
 * quiet for intervalMs, and a link that answers nothing for deadAfterMs after
 * a ping is taken for dead and resumed on a new socket.
 */
export interface HeartbeatOptions {
  intervalMs: number;
  deadAfterMs: number;
  /** A socket that has not been welcomed within this time is given up and retried. */
  connectTimeoutMs: number;
}

/** Detects a lost network within 4.25 s: ping after 1 s of silence, dead 3 s later, checked every 250 ms. */
export const defaultHeartbeat: HeartbeatOptions = { intervalMs: 1000, deadAfterMs: 3000, connectTimeoutMs: 5000 };

export interface SignalingOptions {
  /** Absolute ws:// or wss:// URL of the endpoint, without query. */
  url: string;
  handlers?: SignalingHandlers;
  createSocket?: SocketFactory;
  timers?: Timers;
  random?: () => number;
  backoff?: BackoffOptions;
  /** How many sent frames to keep for re-sending after a resume. */
  maxKeptFrames?: number;
  /** Off (null) unless given: a server without the extension would answer every ping with an error. */
  heartbeat?: HeartbeatOptions | null;
  /** The clock of the heartbeat. */
  now?: () => number;
  /**
   * Solves proof-of-work challenges (pow.ts). Default: altcha-lib's solver in
   * a Web Worker where there are workers; null: none (a join then gets
   * pow_required from a server that asks for proof of work).
   */
  solvePow?: PowSolver | null;
}

const OPEN = 1;
/** The server closes an old connection with 4001 when a resume takes the session over. */
const CLOSE_TAKEN_OVER = 4001;
/** The server closes a banned identity's connection with 4003, after an `error` `banned`. */
const CLOSE_BANNED = 4003;

const defaultTimers: Timers = {
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (h) => globalThis.clearTimeout(h as ReturnType<typeof setTimeout>),
};

/** The ws URL of /ws on the page's own origin. */
export function defaultSignalingUrl(loc: Location = window.location): string {
  const scheme = loc.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${loc.host}/ws`;
}

/**
 * A protocol client for one Stranger session. It knows nothing about React or
 * WebRTC: it numbers client frames, drops duplicate server frames, and keeps a
 * dropped session alive by resuming it with backoff and re-sending what the
 * server may have missed.
 */
export class SignalingClient {
  private readonly opts: Required<Omit<SignalingOptions, 'handlers'>>;
  private heartbeatTimer: unknown = null;
  private connectTimer: unknown = null;
  /** When the server last sent anything on the current socket. */
  private lastHeard = 0;
  /** When the oldest unanswered ping went out; null when none is unanswered. */
  private pingOutstanding: number | null = null;
  /** The highest client seq a pong or welcome acknowledged. */
  private acked = 0;
  private handlers: SignalingHandlers;
  private socket: SocketLike | null = null;
  private reconnectTimer: unknown = null;
  private attempt = 0;
  private disposed = false;
  private _status: LinkStatus = 'connecting';

  private _session: string | null = null;
  private resumeToken: string | null = null;
  /** Highest server seq received (the N of `last=N`). */
  private _lastServerSeq = 0;
  private nextSeq = 1;
  /** Frames sent (or queued) with their seq, for re-sending after a resume. */
  private kept: ClientFrame[] = [];
  /** True once the current socket got its welcome: frames may be written. */
  private ready = false;
  /** Proof of work (pow.ts); null when the client has no solver. */
  private readonly pow: PowGate | null;
  /** Seq of the first kept frame held back until a proof of work is solved (a join or next); Infinity: none. */
  private heldFrom = Infinity;
  /** The last join or next that carried a solution, to send again once after pow_required. */
  private lastPowMsg: ClientMsg | null = null;

  constructor(options: SignalingOptions) {
    this.handlers = options.handlers ?? {};
    this.opts = {
      url: options.url,
      createSocket: options.createSocket ?? ((url) => new WebSocket(url)),
      timers: options.timers ?? defaultTimers,
      random: options.random ?? Math.random,
      backoff: options.backoff ?? defaultBackoff,
      maxKeptFrames: options.maxKeptFrames ?? 512,
      heartbeat: options.heartbeat ?? null,
      now: options.now ?? (() => Date.now()),
      solvePow: options.solvePow === undefined ? (typeof Worker === 'undefined' ? null : workerSolver) : options.solvePow,
    };
    this.pow = this.opts.solvePow ? new PowGate(this.opts.solvePow, () => this.releaseHeld()) : null;
  }

  get status(): LinkStatus {
    return this._status;
  }
  get session(): string | null {
    return this._session;
  }
  get lastServerSeq(): number {
    return this._lastServerSeq;
  }

  setHandlers(h: SignalingHandlers): void {
    this.handlers = h;
  }

  /** The URL for the next connection: a resume once a session exists. */
  connectUrl(): string {
    if (this.resumeToken === null) return this.opts.url;
    const q = `resume=${encodeURIComponent(this.resumeToken)}&last=${this._lastServerSeq}`;
    return `${this.opts.url}${this.opts.url.includes('?') ? '&' : '?'}${q}`;
  }

  connect(): void {
    if (this.disposed || this.socket) return;
    this.ready = false;
    let sock: SocketLike;
    try {
      sock = this.opts.createSocket(this.connectUrl());
    } catch {
      // A malformed URL or a browser refusing the socket: treat as a drop.
      this.scheduleReconnect();
      return;
    }
    this.socket = sock;
    const hb = this.opts.heartbeat;
    if (hb) {
      // A connect whose packets vanish hangs in CONNECTING for minutes.
      this.clearTimer('connectTimer');
      this.connectTimer = this.opts.timers.setTimeout(() => {
        this.connectTimer = null;
        if (this.socket === sock && !this.ready) this.abandon(sock);
      }, hb.connectTimeoutMs);
    }
    sock.onmessage = (ev) => {
      if (this.socket !== sock) return;
      this.lastHeard = this.opts.now();
      this.pingOutstanding = null;
      if (typeof ev.data === 'string') this.handleFrame(ev.data);
    };
    sock.onclose = (ev) => {
      if (this.socket !== sock) return;
      this.socket = null;
      this.ready = false;
      this.stopHeartbeat();
      if (this.disposed) return;
      if (ev.code === CLOSE_TAKEN_OVER || ev.code === CLOSE_BANNED) {
        // Another connection (another tab, or a resume that raced this one)
        // owns the session now; fighting it would take it back and forth.
        // A banned connection would only be refused again.
        this.setStatus('closed');
        this.handlers.onEnded?.(ev.code === CLOSE_BANNED ? 'banned' : 'taken-over');
        return;
      }
      this.scheduleReconnect();
    };
    sock.onerror = () => {
      // The close event follows and does the work.
    };
  }

  /**
   * Sends a frame, numbering it. While the link is down the frame is kept and
   * goes out after the resume (the server drops it if it already had it).
   * Returns the seq given to the frame.
   */
  send(msg: ClientMsg): number {
    const frame: ClientFrame = { ...msg, seq: this.nextSeq++ };
    if (this.heldFrom === Infinity) this.attachPow(frame);
    this.kept.push(frame);
    if (this.kept.length > this.opts.maxKeptFrames) this.kept.splice(0, this.kept.length - this.opts.maxKeptFrames);
    if (this.ready && frame.seq < this.heldFrom) this.write(frame);
    return frame.seq;
  }

  /**
   * Gives a join or next the proof of work the session owes, or holds it (and
   * every frame after it, to keep their order) until the solution is ready.
   */
  private attachPow(frame: ClientFrame): void {
    if (!this.pow || (frame.type !== 'join' && frame.type !== 'next') || frame.pow !== undefined) return;
    const a = this.pow.attach();
    if (a.kind === 'wait') {
      this.heldFrom = frame.seq;
    } else if (a.kind === 'pow') {
      if (a.payload !== '') frame.pow = a.payload;
      const { seq: _seq, pow: _pow, ...msg } = frame;
      this.lastPowMsg = msg;
    }
  }

  /** The solution held frames waited for is ready: attach it and send them. */
  private releaseHeld(): void {
    if (this.heldFrom === Infinity) return;
    const held = this.kept.filter((f) => f.seq >= this.heldFrom);
    this.heldFrom = Infinity;
    const first = held.find((f) => f.type === 'join' || f.type === 'next');
    if (first) this.attachPow(first);
    if (this.ready) for (const f of held) this.write(f);
  }

  /**
   * Pings now (heartbeat on only), so the next pong's ack covers every frame
   * sent so far: a chat line shows as sent within a round trip.
   */
  flush(): void {
    // One ping in flight at a time: its pong asks for the next if frames
    // were sent meanwhile, so a burst of lines costs one ping per round trip.
    if (!this.opts.heartbeat || !this.ready || this.pingOutstanding !== null) return;
    this.ping();
  }

  private ping(): void {
    // Without seq: a ping is never kept or re-sent after a resume.
    const s = this.socket;
    if (!s || s.readyState !== OPEN) return;
    try {
      s.send('{"type":"ping"}');
    } catch {
      return;
    }
    this.pingOutstanding ??= this.opts.now();
  }

  private startHeartbeat(): void {
    const hb = this.opts.heartbeat;
    if (!hb) return;
    this.stopHeartbeat();
    this.lastHeard = this.opts.now();
    this.pingOutstanding = null;
    const tick = (): void => {
      this.heartbeatTimer = null;
      const sock = this.socket;
      if (!sock || !this.ready || this.disposed) return;
      const now = this.opts.now();
      if (this.pingOutstanding !== null && now - this.pingOutstanding >= hb.deadAfterMs) {
        this.abandon(sock);
        return;
      }
      if (this.pingOutstanding === null && now - this.lastHeard >= hb.intervalMs) this.ping();
      this.heartbeatTimer = this.opts.timers.setTimeout(tick, Math.max(100, hb.intervalMs / 4));
    };
    this.heartbeatTimer = this.opts.timers.setTimeout(tick, Math.max(100, hb.intervalMs / 4));
  }

  private stopHeartbeat(): void {
    this.clearTimer('heartbeatTimer');
    this.pingOutstanding = null;
  }

  /** The socket answers nothing: give it up (close 4000 keeps the session) and resume on a new one. */
  private abandon(sock: SocketLike): void {
    if (this.socket !== sock) return;
    this.socket = null;
    this.ready = false;
    this.stopHeartbeat();
    this.clearTimer('connectTimer');
    try {
      sock.close(4000, 'unresponsive');
    } catch {
      /* already closed */
    }
    this.scheduleReconnect();
  }

  private clearTimer(which: 'heartbeatTimer' | 'connectTimer'): void {
    const h = this[which];
    if (h !== null) {
      this.opts.timers.clearTimeout(h);
      this[which] = null;
    }
  }

  /**
   * Drops the current socket and reconnects now (e.g. the browser reports it
   * is back online, so the old socket is probably dead without knowing it).
   */
  reconnectNow(): void {
    if (this.disposed) return;
    this.clearReconnectTimer();
    this.attempt = 0;
    const s = this.socket;
    this.stopHeartbeat();
    this.clearTimer('connectTimer');
    if (s) {
      this.socket = null;
      this.ready = false;
      // 4000: an application code, so the server keeps the session for a resume
      // (1000/1001 would end it).
      try {
        s.close(4000, 'reconnect');
      } catch {
        /* already closed */
      }
    }
    this.setStatus('reconnecting');
    this.connect();
  }

  /** Ends the session (close 1000: the server ends it at once) and stops reconnecting. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.pow?.dispose();
    this.clearReconnectTimer();
    this.stopHeartbeat();
    this.clearTimer('connectTimer');
    const s = this.socket;
    this.socket = null;
    if (s) {
      try {
        s.close(1000, 'bye');
      } catch {
        /* already closed */
      }
    }
    this.setStatus('closed');
  }

  private write(frame: ClientFrame): void {
    const s = this.socket;
    if (!s || s.readyState !== OPEN) return;
    try {
      s.send(JSON.stringify(frame));
    } catch {
      // Kept in `kept`; the resume re-sends it.
    }
  }

  private handleFrame(raw: string): void {
    const msg = parseServerMsg(raw);
    if (!msg) return;
    if (msg.type === 'welcome') {
      this.handleWelcome(msg);
      return;
    }
    if (msg.type === 'pong') {
      // Numbered like every server frame, but only the link cares.
      if (msg.seq > this._lastServerSeq) this._lastServerSeq = msg.seq;
      this.acked = Math.max(this.acked, msg.ack);
      this.handlers.onAck?.(msg.ack);
      if (this.nextSeq - 1 > this.acked) this.flush();
      return;
    }
    // Duplicates appear when a resume re-sends frames we already had.
    if (msg.seq <= this._lastServerSeq) return;
    this._lastServerSeq = msg.seq;
    if (msg.type === 'error' && msg.code === 'pow_required' && this.lastPowMsg && this.pow?.refused(msg.pow)) {
      // Solve the fresh challenge and send the join or next again, once;
      // the person sees nothing of it.
      this.send(this.lastPowMsg);
      return;
    }
    this.handlers.onMessage?.(msg);
  }

  private handleWelcome(msg: WelcomeMsg): void {
    const hadSession = this._session !== null;
    const lostSession = hadSession && (!msg.resumed || msg.session !== this._session);
    this._session = msg.session;
    this.resumeToken = msg.resumeToken;
    this.attempt = 0;
    this.ready = true;
    this.clearTimer('connectTimer');
    this.startHeartbeat();
    this.pow?.welcome(msg.pow);
    if (msg.resumed && !lostSession) {
      const last = msg.lastSeq ?? 0;
      this.kept = this.kept.filter((f) => f.seq > last);
      this.acked = Math.max(this.acked, last);
      this.handlers.onAck?.(last);
    } else if (lostSession) {
      // A new session: frames meant for the old one are meaningless now.
      this._lastServerSeq = 0;
      this.kept = [];
      this.nextSeq = 1;
      this.acked = 0;
    }
    // else: the first welcome; frames queued before it go out now.
    // A join or next among them that owes a proof of work holds the rest.
    this.heldFrom = Infinity;
    for (const f of this.kept) {
      if (f.seq > this.acked) this.attachPow(f);
      if (this.heldFrom !== Infinity) break;
    }
    // Re-send before telling the handler, so frames keep their seq order.
    for (const f of this.kept) if (f.seq < this.heldFrom) this.write(f);
    this.setStatus('open');
    this.handlers.onWelcome?.(msg, lostSession);
  }

  private scheduleReconnect(): void {
    if (this.disposed) return;
    this.setStatus('reconnecting');
    this.clearReconnectTimer();
    const delay = backoffDelay(this.attempt, this.opts.random, this.opts.backoff);
    this.attempt++;
    this.reconnectTimer = this.opts.timers.setTimeout(() => {
      this.reconnectTimer = null;
      this.connect();
    }, delay);
  }

  private clearReconnectTimer(): void {
    if (this.reconnectTimer !== null) {
      this.opts.timers.clearTimeout(this.reconnectTimer);
      this.reconnectTimer = null;
    }
  }

  private setStatus(s: LinkStatus): void {
    if (this._status === s) return;
    this._status = s;
    this.handlers.onStatus?.(s);
  }
}
