// Fakes of the browser APIs the client uses, with live-instance counters so
// tests can prove how many sockets and peer connections exist at once.
import type { SocketLike } from '../signaling/client';

export class FakeSocket implements SocketLike {
  static instances: FakeSocket[] = [];
  static live = 0;
  static maxLive = 0;
  static reset(): void {
    FakeSocket.instances = [];
    FakeSocket.live = 0;
    FakeSocket.maxLive = 0;
  }
  static last(): FakeSocket {
    const s = FakeSocket.instances[FakeSocket.instances.length - 1];
    if (!s) throw new Error('no socket was created');
    return s;
  }

  readyState = 0;
  onopen: ((ev: Event) => unknown) | null = null;
  onmessage: ((ev: MessageEvent) => unknown) | null = null;
  onclose: ((ev: CloseEvent) => unknown) | null = null;
  onerror: ((ev: Event) => unknown) | null = null;
  sent: Record<string, unknown>[] = [];
  closedWith: number | null = null;
  private alive = true;

  constructor(readonly url: string) {
    FakeSocket.instances.push(this);
    FakeSocket.live++;
    FakeSocket.maxLive = Math.max(FakeSocket.maxLive, FakeSocket.live);
  }

  send(data: string): void {
    if (this.readyState !== 1) throw new Error('send on a socket that is not open');
    this.sent.push(JSON.parse(data) as Record<string, unknown>);
  }

  close(code?: number): void {
    this.closedWith = code ?? 1005;
    this.readyState = 3;
    this.die();
  }

  // ---- driven by the test, playing the server ----

  open(): void {
    this.readyState = 1;
    this.onopen?.(new Event('open'));
  }

  receive(msg: object): void {
    this.onmessage?.({ data: JSON.stringify(msg) } as MessageEvent);
  }

  receiveRaw(data: string): void {
    this.onmessage?.({ data } as MessageEvent);
  }

  /** The connection drops (server restart, network loss). */
  drop(code = 1006): void {
    this.readyState = 3;
    this.die();
    this.onclose?.({ code } as CloseEvent);
  }

  /**
   * Frames of a given type the client sent on this socket. 'signal' means the
   * peer connection's signals; the presence signals (docs/protocol.md) that
   * run beside them are 'presence'.
   */
  sentOf(type: string): Record<string, unknown>[] {
    const isPresence = (f: Record<string, unknown>) =>
      f.type === 'signal' && typeof f.data === 'object' && f.data !== null && 'presence' in f.data;
    if (type === 'presence') return this.sent.filter(isPresence);
    return this.sent.filter((f) => f.type === type && !isPresence(f));
  }

  private die(): void {
    if (this.alive) {
      this.alive = false;
      FakeSocket.live--;
    }
  }
}

export class FakeTrack {
  enabled = true;
  stopped = false;
  constructor(readonly kind: 'audio' | 'video') {}
  stop(): void {
    this.stopped = true;
  }
}

export class FakeMediaStream {
  private tracks: FakeTrack[];
  constructor(tracks: FakeTrack[] = []) {
    this.tracks = [...tracks];
  }
  getTracks(): FakeTrack[] {
    return [...this.tracks];
  }
  getAudioTracks(): FakeTrack[] {
    return this.tracks.filter((t) => t.kind === 'audio');
  }
  getVideoTracks(): FakeTrack[] {
    return this.tracks.filter((t) => t.kind === 'video');
  }
  addTrack(t: FakeTrack): void {
    this.tracks.push(t);
  }
}

export function cameraStream(): FakeMediaStream {
  return new FakeMediaStream([new FakeTrack('audio'), new FakeTrack('video')]);
}

interface FakeTransceiver {
  mid: string | null;
  direction: RTCRtpTransceiverDirection;
  sender: { track: FakeTrack | null; replaceTrack(t: FakeTrack | null): Promise<void> };
  receiver: { track: FakeTrack };
}

function transceiver(kind: 'audio' | 'video', direction: RTCRtpTransceiverDirection, mid: string | null): FakeTransceiver {
  const sender = {
    track: null as FakeTrack | null,
    replaceTrack(t: FakeTrack | null) {
      sender.track = t;
      return Promise.resolve();
    },
  };
  return { mid, direction, sender, receiver: { track: new FakeTrack(kind) } };
}

/** A fake RTCPeerConnection that follows the JSEP state changes the client relies on. */
export class FakePeerConnection {
  static instances: FakePeerConnection[] = [];
  static live = 0;
  static maxLive = 0;
  static reset(): void {
    FakePeerConnection.instances = [];
    FakePeerConnection.live = 0;
    FakePeerConnection.maxLive = 0;
  }
  static last(): FakePeerConnection {
    const p = FakePeerConnection.instances[FakePeerConnection.instances.length - 1];
    if (!p) throw new Error('no peer connection was created');
    return p;
  }

  signalingState: RTCSignalingState = 'stable';
  iceConnectionState: RTCIceConnectionState = 'new';
  localDescription: RTCSessionDescriptionInit | null = null;
  remoteDescription: RTCSessionDescriptionInit | null = null;
  transceivers: FakeTransceiver[] = [];
  addedCandidates: RTCIceCandidateInit[] = [];
  offers: (RTCOfferOptions | undefined)[] = [];
  closed = false;
  private iceRestartPending = false;
  stats = new Map<string, Record<string, unknown>>();
  onicecandidate: ((ev: { candidate: { toJSON(): RTCIceCandidateInit } | null }) => void) | null = null;
  ontrack: ((ev: { track: FakeTrack }) => void) | null = null;
  oniceconnectionstatechange: (() => void) | null = null;

  constructor(public config: RTCConfiguration) {
    FakePeerConnection.instances.push(this);
    FakePeerConnection.live++;
    FakePeerConnection.maxLive = Math.max(FakePeerConnection.maxLive, FakePeerConnection.live);
  }

  addTransceiver(kind: 'audio' | 'video', init?: RTCRtpTransceiverInit): FakeTransceiver {
    const t = transceiver(kind, init?.direction ?? 'sendrecv', null);
    this.transceivers.push(t);
    return t;
  }
  getTransceivers(): FakeTransceiver[] {
    return this.transceivers;
  }
  async createOffer(opts?: RTCOfferOptions): Promise<RTCSessionDescriptionInit> {
    this.offers.push(opts);
    return { type: 'offer', sdp: `offer-${this.offers.length}${opts?.iceRestart ? '-restart' : ''}` };
  }
  async createAnswer(): Promise<RTCSessionDescriptionInit> {
    return { type: 'answer', sdp: 'answer' };
  }
  restartIce(): void {
    this.iceRestartPending = true;
  }
  /** Without a description: creates the offer or answer the state calls for (as browsers do). */
  async setLocalDescription(d?: RTCSessionDescriptionInit): Promise<void> {
    if (!d) {
      if (this.signalingState === 'have-remote-offer') {
        d = await this.createAnswer();
      } else {
        d = await this.createOffer(this.iceRestartPending ? { iceRestart: true } : undefined);
        this.iceRestartPending = false;
      }
    }
    this.localDescription = d;
    this.signalingState = d.type === 'offer' ? 'have-local-offer' : 'stable';
    this.transceivers.forEach((t, i) => (t.mid ??= String(i)));
  }
  async setRemoteDescription(d: RTCSessionDescriptionInit): Promise<void> {
    this.remoteDescription = d;
    if (d.type === 'offer') {
      this.signalingState = 'have-remote-offer';
      if (this.transceivers.length === 0) {
        // Applying an offer with audio and video creates a receiving transceiver for each.
        this.transceivers.push(transceiver('audio', 'recvonly', '0'), transceiver('video', 'recvonly', '1'));
      }
    } else {
      this.signalingState = 'stable';
    }
  }
  async addIceCandidate(c: RTCIceCandidateInit): Promise<void> {
    if (!this.remoteDescription) throw new Error('InvalidStateError: no remote description');
    this.addedCandidates.push(c);
  }
  async getStats(): Promise<Map<string, Record<string, unknown>>> {
    return this.stats;
  }
  getConfiguration(): RTCConfiguration {
    return this.config;
  }
  setConfiguration(c: RTCConfiguration): void {
    this.config = c;
  }
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.signalingState = 'closed';
    FakePeerConnection.live--;
  }

  // ---- driven by the test ----

  emitCandidate(c: RTCIceCandidateInit | null): void {
    this.onicecandidate?.({ candidate: c ? { toJSON: () => c } : null });
  }
  setIceState(s: RTCIceConnectionState): void {
    this.iceConnectionState = s;
    this.oniceconnectionstatechange?.();
  }
  /** The inbound video stream's framesDecoded, next to the selected pair. */
  decoded(frames: number): void {
    this.stats.set('IV', { id: 'IV', type: 'inbound-rtp', kind: 'video', framesDecoded: frames });
  }
  /** Stats whose selected pair has a local candidate of the given type. */
  selectPair(localType: 'host' | 'srflx' | 'prflx' | 'relay'): void {
    this.stats = new Map<string, Record<string, unknown>>([
      ['T1', { id: 'T1', type: 'transport', selectedCandidatePairId: 'CP1' }],
      ['CP1', { id: 'CP1', type: 'candidate-pair', localCandidateId: 'L1', remoteCandidateId: 'R1', state: 'succeeded' }],
      ['L1', { id: 'L1', type: 'local-candidate', candidateType: localType }],
      ['R1', { id: 'R1', type: 'remote-candidate', candidateType: 'host' }],
    ]);
  }
}

/** Waits for queued promise callbacks (negotiation steps) to run. */
export async function flush(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
}

export const welcome = (over: Record<string, unknown> = {}) => ({
  type: 'welcome',
  session: 's_1',
  resumeToken: 'tok1',
  resumed: false,
  iceServers: [{ urls: 'stun:127.0.0.1:3478' }],
  online: 7,
  ...over,
});
