import type { SignalData } from '../signaling/protocol';
import type { PartnerState } from './view';

/** How often a chatting client tells its partner its presence (docs/protocol.md). */
export const PRESENCE_INTERVAL_MS = 2000;
/** Silence of the partner's presence after which their connection counts as lost. */
export const PRESENCE_LOST_MS = 5000;

/** What one side tells the other: `signal` data `{presence: …}`. */
export type PresenceInfo = Extract<SignalData, { presence: unknown }>['presence'];

/** The presence in a signal's data, or null if the data is something else (the peer connection's). */
export function parsePresence(data: unknown): PresenceInfo | null {
  if (typeof data !== 'object' || data === null || !('presence' in data)) return null;
  const p: unknown = data.presence;
  if (typeof p !== 'object' || p === null) return null;
  const o = p as Record<string, unknown>;
  return { camera: o.camera !== false, mic: o.mic !== false };
}

/** What Presence needs from the call around it. */
export interface PresenceHost {
  /** Our camera and mic to tell, or null when nothing may be sent now (no chat, our link down). */
  local(): PresenceInfo | null;
  send(p: PresenceInfo): void;
  /** The partner as shown; null until their first presence (older clients never send one). */
  partner(): PartnerState | null;
  showPartner(p: PartnerState): void;
  /** Our own link is open: only then is the partner's silence theirs. */
  selfOk(): boolean;
}

/**
 * The presence convention for the current chat: tells the partner our
 * camera and mic every PRESENCE_INTERVAL_MS and on every switch, and
 * watches theirs, which doubles as their heartbeat: PRESENCE_LOST_MS
 * without any (while our own link is fine) shows their link as lost.
 */
export class Presence {
  private timer: ReturnType<typeof setInterval> | null = null;
  /** When the partner was last heard from (Date.now()). */
  private heard = 0;
  private lastSent = 0;

  constructor(private readonly host: PresenceHost) {}

  /** A chat began. */
  start(): void {
    this.stop();
    this.heard = Date.now();
    this.tell(true);
    this.timer = setInterval(() => {
      this.tell();
      this.check();
    }, PRESENCE_INTERVAL_MS / 2);
  }

  /** The chat ended (or the call is disposed). */
  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /** Tells the partner our state; at most every PRESENCE_INTERVAL_MS unless forced (a switch, a resume). */
  tell(force = false): void {
    const mine = this.host.local();
    if (!mine) return;
    const now = Date.now();
    if (!force && now - this.lastSent < PRESENCE_INTERVAL_MS - 50) return;
    this.lastSent = now;
    this.host.send(mine);
  }

  /**
   * Something came from the partner (a chat line), or our own link came
   * back after an outage in which we could not have heard them.
   */
  heardNow(): void {
    this.heard = Date.now();
  }

  receive(p: PresenceInfo): void {
    this.heard = Date.now();
    const shown = this.host.partner();
    if (shown && shown.camera === p.camera && shown.mic === p.mic && shown.link === 'ok') return;
    this.host.showPartner({ ...p, link: 'ok' });
  }

  private check(): void {
    const p = this.host.partner();
    if (!p || p.link === 'lost' || !this.host.selfOk()) return;
    if (Date.now() - this.heard >= PRESENCE_LOST_MS) this.host.showPartner({ ...p, link: 'lost' });
  }
}
