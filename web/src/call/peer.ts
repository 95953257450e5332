import type { IceServer } from '../signaling/protocol';

const ICE_DISCONNECTED_GRACE_MS = 2500;
const ICE_RESTART_RETRY_MS = 4000;
const MAX_ICE_RESTARTS = 6;
/** Often enough to see stalled video within STALL_POLLS seconds. */
const STATS_POLL_MS = 1000;
/** Polls without a new decoded frame before the video counts as stalled. */
const STALL_POLLS = 2;

/** What a peer connection sends to the partner through signaling. */
export type SignalData = { sdp: RTCSessionDescriptionInit } | { candidate: RTCIceCandidateInit | null };

/**
 * What the path the media takes looks like, as far as the peer connection
 * knows. reconnecting: ICE lost a path it had. stalled: ICE says connected
 * but no video frame was decoded for STALL_POLLS polls.
 */
export type PeerConnectionKind = 'connecting' | 'reconnecting' | 'stalled' | 'direct' | 'relay';

/** What a PeerLink needs from the call around it. */
export interface PeerHost {
  /** Sends to the partner of the current chat. */
  sendSignal(data: SignalData): void;
  /** A remote track arrived. */
  remoteTrack(track: MediaStreamTrack): void;
  /** The media path changed (reported only while in a chat). */
  connectionKind(kind: PeerConnectionKind): void;
  /** The camera's stream once it is on; null before. */
  localStream(): MediaStream | null;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * One RTCPeerConnection and its negotiation, for one chat: a fresh one per
 * chat, created while waiting so that `matched` goes straight to the offer.
 *
 * Negotiation has no glare by construction: only the side the server marked
 * `initiator` ever creates offers (the first one and every ICE restart).
 * Once closed, nothing it started (a pending step, a timer, a stats read)
 * reaches the host.
 */
export class PeerLink {
  /** Remote candidates that came before the remote description. */
  private held: RTCIceCandidateInit[] = [];
  /** Serialises SDP and candidate work, so nothing races setRemoteDescription. */
  private ops: Promise<void> = Promise.resolve();
  /** Set by the match; null while waiting for one. */
  private initiator: boolean | null = null;
  /** The transceivers exist (the first offer or answer was made). */
  private negotiated = false;
  private restarts = 0;
  private restartTimer: ReturnType<typeof setTimeout> | null = null;
  private statsTimer: ReturnType<typeof setInterval> | null = null;
  private closed = false;
  /** ICE was connected once in this chat: a later disconnect is a reconnect. */
  private wasConnected = false;
  /** Video frames decoded at the last stats poll, and polls since the count last grew. */
  private framesDecoded = 0;
  private pollsWithoutFrames = 0;

  constructor(
    readonly pc: RTCPeerConnection,
    private readonly host: PeerHost,
  ) {
    pc.onicecandidate = (ev) => host.sendSignal({ candidate: ev.candidate ? ev.candidate.toJSON() : null });
    pc.ontrack = (ev) => host.remoteTrack(ev.track);
    pc.oniceconnectionstatechange = () => this.onIceState();
  }

  /** The config for a peer connection made while waiting for a chat. */
  static config(iceServers: readonly IceServer[], relayOnly: boolean): RTCConfiguration {
    return {
      iceServers: iceServers as RTCIceServer[],
      iceTransportPolicy: relayOnly ? 'relay' : 'all',
      bundlePolicy: 'max-bundle',
      // Gather candidates now, while waiting, rather than after the match:
      // the pool is what the offer then uses. The relay is allocated at the
      // match, which brings the TURN credentials (protocol 1.1).
      iceCandidatePoolSize: 1,
    };
  }

  /** The chat started: the initiator sends its offer at once. */
  matched(initiator: boolean): void {
    this.initiator = initiator;
    if (initiator) this.offer(false);
  }

  /** The chat's TURN credentials (protocol 1.1: from `matched`), or renewed ones after a resume. */
  setIceServers(iceServers: readonly IceServer[]): void {
    try {
      this.pc.setConfiguration({ ...this.pc.getConfiguration(), iceServers: iceServers as RTCIceServer[] });
    } catch {
      /* some browsers refuse changes after negotiation; the old ones still work */
    }
  }

  /** A signal from the partner: a description or a candidate (null: end of candidates). */
  receive(data: unknown): void {
    if (!isObject(data)) return;
    const sdp = data.sdp;
    if (isObject(sdp) && (sdp.type === 'offer' || sdp.type === 'answer') && typeof sdp.sdp === 'string') {
      const desc: RTCSessionDescriptionInit = { type: sdp.type, sdp: sdp.sdp };
      this.enqueue(() => this.applyRemoteDescription(desc));
    } else if ('candidate' in data) {
      if (!isObject(data.candidate)) return; // null: end of candidates; nothing to do.
      const cand = data.candidate as RTCIceCandidateInit;
      this.enqueue(async () => {
        if (!this.pc.remoteDescription) {
          this.held.push(cand);
          return;
        }
        await this.pc.addIceCandidate(cand).catch(() => {});
      });
    }
  }

  /**
   * Puts the local tracks on the senders, off the negotiation path: the camera
   * may start after the offer (we join while it warms up), and replaceTrack
   * needs no renegotiation, so this runs after each description is sent and
   * again when the camera is ready.
   */
  attachLocalTracks(): void {
    const stream = this.host.localStream();
    if (!stream || !this.negotiated || this.closed) return;
    for (const t of this.pc.getTransceivers()) {
      const kind = t.receiver.track?.kind;
      if (!kind || t.sender.track) continue;
      const track = kind === 'audio' ? stream.getAudioTracks()[0] : stream.getVideoTracks()[0];
      // Rejects only when the connection was closed meanwhile: nothing to do then.
      if (track) t.sender.replaceTrack(track).catch(() => {});
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.restartTimer !== null) clearTimeout(this.restartTimer);
    if (this.statsTimer !== null) clearInterval(this.statsTimer);
    this.pc.onicecandidate = null;
    this.pc.ontrack = null;
    this.pc.oniceconnectionstatechange = null;
    this.pc.close();
  }

  private enqueue(op: () => Promise<void>): void {
    this.ops = this.ops.then(async () => {
      if (this.closed) return;
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
    if (this.initiator !== true) return;
    this.enqueue(async () => {
      const pc = this.pc;
      if (!this.negotiated) {
        this.negotiated = true;
        pc.addTransceiver('audio', { direction: 'sendrecv' });
        pc.addTransceiver('video', { direction: 'sendrecv' });
      }
      if (pc.signalingState !== 'stable') return;
      if (iceRestart) pc.restartIce();
      await pc.setLocalDescription();
      if (this.closed) return;
      this.sendLocalDescription();
      this.attachLocalTracks();
    });
  }

  private async applyRemoteDescription(desc: RTCSessionDescriptionInit): Promise<void> {
    const pc = this.pc;
    if (desc.type === 'offer') {
      if (this.initiator !== false) return; // never happens with a correct partner; no glare
      await pc.setRemoteDescription(desc);
      if (this.closed) return;
      this.addHeldCandidates();
      if (!this.negotiated) {
        this.negotiated = true;
        for (const t of pc.getTransceivers()) t.direction = 'sendrecv';
      }
      await pc.setLocalDescription(); // the answer
      if (this.closed) return;
      this.sendLocalDescription();
      this.attachLocalTracks();
    } else {
      if (this.initiator !== true || pc.signalingState !== 'have-local-offer') return;
      await pc.setRemoteDescription(desc);
      if (this.closed) return;
      this.addHeldCandidates();
    }
  }

  private sendLocalDescription(): void {
    const local = this.pc.localDescription;
    if (local) this.host.sendSignal({ sdp: { type: local.type, sdp: local.sdp } });
  }

  /**
   * Remote candidates that came before the remote description, in order. Not
   * awaited: the peer connection runs its operations in the order they were
   * called, so the next negotiation step need not wait for a round trip each.
   */
  private addHeldCandidates(): void {
    for (const c of this.held.splice(0)) this.pc.addIceCandidate(c).catch(() => {});
  }

  private onIceState(): void {
    switch (this.pc.iceConnectionState) {
      case 'connected':
      case 'completed':
        if (this.restartTimer !== null) clearTimeout(this.restartTimer);
        this.restartTimer = null;
        this.restarts = 0;
        this.wasConnected = true;
        void this.readConnectionKind();
        this.statsTimer ??= setInterval(() => void this.readConnectionKind(), STATS_POLL_MS);
        return;
      case 'disconnected':
        this.report(this.wasConnected ? 'reconnecting' : 'connecting');
        // Often recovers by itself within a second or two; restart only if not.
        this.scheduleIceRestart(ICE_DISCONNECTED_GRACE_MS);
        return;
      case 'failed':
        this.report(this.wasConnected ? 'reconnecting' : 'connecting');
        this.scheduleIceRestart(0);
        return;
      default:
        this.report('connecting');
    }
  }

  /** Only a chat shows a connection; a connection prepared for the next one has none. */
  private report(kind: PeerConnectionKind): void {
    if (this.initiator !== null && !this.closed) this.host.connectionKind(kind);
  }

  private scheduleIceRestart(delay: number): void {
    if (this.initiator !== true || this.restartTimer !== null) return;
    this.restartTimer = setTimeout(() => {
      this.restartTimer = null;
      if (this.closed) return;
      const s = this.pc.iceConnectionState;
      if (s !== 'disconnected' && s !== 'failed') return;
      if (this.restarts >= MAX_ICE_RESTARTS) return;
      this.restarts++;
      this.offer(true);
      // If this restart does not take either, try again.
      this.scheduleIceRestart(ICE_RESTART_RETRY_MS);
    }, delay);
  }

  /** direct or relay, from the local candidate of the selected candidate pair. */
  private async readConnectionKind(): Promise<void> {
    let stats: RTCStatsReport;
    try {
      stats = await this.pc.getStats();
    } catch {
      return;
    }
    const ice = this.pc.iceConnectionState;
    if (ice !== 'connected' && ice !== 'completed') return;
    // Frames decoded only grow; a count that stops after the first frame
    // means the media froze although ICE has not noticed (yet).
    const frames = decodedVideoFrames(stats);
    if (frames > this.framesDecoded) {
      this.framesDecoded = frames;
      this.pollsWithoutFrames = 0;
    } else if (this.framesDecoded > 0) {
      this.pollsWithoutFrames++;
    }
    if (this.pollsWithoutFrames >= STALL_POLLS) {
      this.report('stalled');
      return;
    }
    const kind = selectedCandidateType(stats);
    if (kind !== null) this.report(kind === 'relay' ? 'relay' : 'direct');
  }
}

/** The sum of framesDecoded over the inbound video streams. */
export function decodedVideoFrames(stats: RTCStatsReport): number {
  let n = 0;
  stats.forEach((r: Record<string, unknown>) => {
    if (r.type === 'inbound-rtp' && r.kind === 'video' && typeof r.framesDecoded === 'number') n += r.framesDecoded;
  });
  return n;
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
