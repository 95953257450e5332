import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { SignalingClient } from '../signaling/client';
import { cameraStream, FakeMediaStream, FakePeerConnection, FakeSocket, flush, welcome } from '../test/fakes';
import { CallController, type CallDeps } from './controller';
import type { Evidence } from './evidence';
import { selectedCandidateType } from './peer';
import { statusText } from './status';

interface Opts {
  media?: () => Promise<unknown>;
  allowed?: boolean;
  evidence?: Evidence;
}

function setup(o: Opts = {}) {
  const gum = vi.fn(o.media ?? (() => Promise.resolve(cameraStream())));
  const deps: CallDeps = {
    createSignaling: (handlers) =>
      new SignalingClient({ url: 'ws://node.test/ws', handlers, createSocket: (u) => new FakeSocket(u), random: () => 0 }),
    createPeerConnection: (c) => new FakePeerConnection(c) as unknown as RTCPeerConnection,
    createMediaStream: () => new FakeMediaStream() as unknown as MediaStream,
    getUserMedia: gum as unknown as (c: MediaStreamConstraints) => Promise<MediaStream>,
    mediaAllowed: () => Promise.resolve(o.allowed ?? true),
    evidence: o.evidence,
  };
  const ctl = new CallController(deps);
  ctl.connect();
  const sock = FakeSocket.last();
  sock.open();
  return { ctl, sock, gum };
}

/** A video session matched in room1 (as initiator or not), with its peer connection. */
async function videoCall(initiator: boolean) {
  const t = setup();
  t.sock.receive(welcome());
  t.ctl.start('video', []);
  await flush();
  matched(t.sock, initiator);
  await flush();
  return { ...t, pc: FakePeerConnection.last() };
}

/** Where presence signals shift the numbering, the seq itself is not the point. */
const anySeq: unknown = expect.any(Number);
let seq = 0;
const srv = (sock: FakeSocket, msg: Record<string, unknown>) => sock.receive({ ...msg, seq: ++seq });
const matched = (sock: FakeSocket, initiator: boolean, mode = 'video', commonInterests: string[] = []) =>
  srv(sock, { type: 'matched', room: 'room1', initiator, mode, commonInterests });

beforeEach(() => {
  FakeSocket.reset();
  FakePeerConnection.reset();
  seq = 0;
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('CallController', () => {
  it('shows the online count and offers privacy mode only with a TURN server', () => {
    const { ctl, sock } = setup();
    sock.receive(welcome({ online: 42 }));
    expect(ctl.getView().online).toBe(42);
    expect(ctl.getView().turnAvailable).toBe(false);
    ctl.setPrivacy(true);
    expect(ctl.getView().privacy).toBe(false);

    sock.drop();
    vi.advanceTimersByTime(1000);
    const s2 = FakeSocket.last();
    s2.open();
    s2.receive(welcome({ resumed: true, iceServers: [{ urls: 'turn:127.0.0.1:3478', username: 'u', credential: 'c' }] }));
    expect(ctl.getView().turnAvailable).toBe(true);
    ctl.setPrivacy(true);
    expect(ctl.getView().privacy).toBe(true);
    ctl.start('video', []);
    expect(FakePeerConnection.last().config.iceTransportPolicy).toBe('relay');
  });

  it('text mode: joins with normalised interests and never creates a peer connection', async () => {
    const { ctl, sock } = setup();
    sock.receive(welcome());
    ctl.start('text', [' Music', 'music', 'Films']);
    expect(sock.sentOf('join')).toEqual([{ type: 'join', mode: 'text', interests: ['music', 'films'], seq: anySeq }]);
    expect(ctl.getView().phase).toBe('waiting');
    srv(sock, { type: 'waiting' });
    matched(sock, true, 'text', ['music', 'films']);
    await flush();
    expect(ctl.getView().phase).toBe('chatting');
    expect(statusText(ctl.getView()).sub).toBe('You both like music and films.');
    expect(FakePeerConnection.instances).toHaveLength(0);
    expect(sock.sentOf('signal')).toEqual([]);
  });

  it('video, initiator: the peer connection exists while waiting; matched sends the offer at once', async () => {
    const { ctl, sock, gum } = setup();
    sock.receive(welcome());
    ctl.start('video', []);
    expect(FakePeerConnection.instances).toHaveLength(1); // created before the match
    await flush();
    expect(gum).toHaveBeenCalledTimes(1);
    expect(sock.sentOf('join')).toEqual([{ type: 'join', mode: 'video', seq: anySeq }]);
    const pc = FakePeerConnection.last();
    expect(ctl.getView().pcCount).toBe(1);

    matched(sock, true);
    await flush();
    const signals = sock.sentOf('signal');
    expect(signals).toEqual([{ type: 'signal', room: 'room1', data: { sdp: { type: 'offer', sdp: 'offer-1' } }, seq: anySeq }]);
    // Local tracks are on both senders.
    expect(pc.transceivers.map((t) => t.sender.track?.kind)).toEqual(['audio', 'video']);

    // Candidates before the answer are held, then applied in order.
    srv(sock, { type: 'signal', room: 'room1', data: { candidate: { candidate: 'c1', sdpMid: '0' } } });
    srv(sock, { type: 'signal', room: 'room1', data: { candidate: { candidate: 'c2', sdpMid: '0' } } });
    await flush();
    expect(pc.addedCandidates).toEqual([]);
    srv(sock, { type: 'signal', room: 'room1', data: { sdp: { type: 'answer', sdp: 'answer' } } });
    await flush();
    expect(pc.remoteDescription).toEqual({ type: 'answer', sdp: 'answer' });
    expect(pc.addedCandidates.map((c) => c.candidate)).toEqual(['c1', 'c2']);
    srv(sock, { type: 'signal', room: 'room1', data: { candidate: { candidate: 'c3', sdpMid: '0' } } });
    srv(sock, { type: 'signal', room: 'room1', data: { candidate: null } });
    await flush();
    expect(pc.addedCandidates.map((c) => c.candidate)).toEqual(['c1', 'c2', 'c3']);

    // Our candidates go out with the current room.
    pc.emitCandidate({ candidate: 'mine', sdpMid: '0' });
    expect(sock.sentOf('signal').at(-1)).toMatchObject({ room: 'room1', data: { candidate: { candidate: 'mine' } } });
  });

  it('video, not initiator: never offers; answers the offer with its tracks', async () => {
    const { sock, pc } = await videoCall(false);
    expect(pc.offers).toEqual([]);
    expect(sock.sentOf('signal')).toEqual([]);
    srv(sock, { type: 'signal', room: 'room1', data: { candidate: { candidate: 'early', sdpMid: '0' } } });
    srv(sock, { type: 'signal', room: 'room1', data: { sdp: { type: 'offer', sdp: 'offer-x' } } });
    await flush();
    expect(pc.remoteDescription?.type).toBe('offer');
    expect(pc.localDescription?.type).toBe('answer');
    expect(pc.transceivers.every((t) => t.direction === 'sendrecv')).toBe(true);
    expect(pc.transceivers.map((t) => t.sender.track?.kind)).toEqual(['audio', 'video']);
    expect(pc.addedCandidates.map((c) => c.candidate)).toEqual(['early']);
    expect(sock.sentOf('signal')).toEqual([
      { type: 'signal', room: 'room1', data: { sdp: { type: 'answer', sdp: 'answer' } }, seq: anySeq },
    ]);
    // An ICE failure on the answering side does not make it offer (no glare).
    pc.setIceState('failed');
    vi.advanceTimersByTime(10_000);
    await flush();
    expect(pc.offers).toEqual([]);
  });

  it('ignores signals for another room', async () => {
    const { ctl, sock } = setup();
    sock.receive(welcome());
    ctl.start('video', []);
    await flush();
    matched(sock, false);
    srv(sock, { type: 'signal', room: 'old-room', data: { sdp: { type: 'offer', sdp: 'stale' } } });
    await flush();
    expect(FakePeerConnection.last().remoteDescription).toBeNull();
  });

  it('joins in parallel with the camera when permission is granted, the camera arriving after the offer', async () => {
    let resolveMedia: (s: unknown) => void = () => {};
    const { ctl, sock } = setup({ media: () => new Promise((r) => (resolveMedia = r)), allowed: true });
    sock.receive(welcome());
    ctl.start('video', []);
    await flush();
    expect(sock.sentOf('join')).toHaveLength(1); // camera still starting
    matched(sock, true);
    await flush();
    const pc = FakePeerConnection.last();
    expect(sock.sentOf('signal')).toHaveLength(1); // offered without waiting for the camera
    expect(pc.transceivers.map((t) => t.sender.track)).toEqual([null, null]);
    resolveMedia(cameraStream());
    await flush();
    expect(pc.transceivers.map((t) => t.sender.track?.kind)).toEqual(['audio', 'video']);
    expect(pc.offers).toHaveLength(1); // replaceTrack: no renegotiation
  });

  it('permission known on the landing screen: the click joins first, before the camera and the peer connection', async () => {
    const order: string[] = [];
    const deps: CallDeps = {
      createSignaling: (handlers) =>
        new SignalingClient({
          url: 'ws://node.test/ws',
          handlers,
          createSocket: (u) => {
            const s = new FakeSocket(u);
            const send = s.send.bind(s);
            s.send = (data: string) => {
              { const type = (JSON.parse(data) as { type: string }).type; if (type !== 'watch') order.push(type); }
              send(data);
            };
            return s;
          },
          random: () => 0,
        }),
      createPeerConnection: (c) => {
        order.push('peer connection');
        return new FakePeerConnection(c) as unknown as RTCPeerConnection;
      },
      createMediaStream: () => new FakeMediaStream() as unknown as MediaStream,
      getUserMedia: () => {
        order.push('camera');
        return new Promise<MediaStream>(() => {});
      },
      mediaAllowed: () => Promise.resolve(true),
    };
    const ctl = new CallController(deps);
    ctl.connect(); // the landing screen asks about the permission
    FakeSocket.last().open();
    FakeSocket.last().receive(welcome());
    await flush();
    ctl.start('video', []);
    // Synchronously, in the click: nothing awaited before the join.
    expect(order).toEqual(['join', 'camera', 'peer connection']);
    expect(ctl.getView().phase).toBe('waiting');
  });

  it('the landing screen warms up WebRTC and asks about the camera, without a peer connection or a camera', () => {
    const warmUpWebRTC = vi.fn();
    const mediaAllowed = vi.fn(() => Promise.resolve(true));
    const gum = vi.fn(() => Promise.resolve(cameraStream()));
    const ctl = new CallController({
      createSignaling: (handlers) =>
        new SignalingClient({ url: 'ws://node.test/ws', handlers, createSocket: (u) => new FakeSocket(u), random: () => 0 }),
      createPeerConnection: (c) => new FakePeerConnection(c) as unknown as RTCPeerConnection,
      createMediaStream: () => new FakeMediaStream() as unknown as MediaStream,
      getUserMedia: gum as unknown as (c: MediaStreamConstraints) => Promise<MediaStream>,
      mediaAllowed,
      warmUpWebRTC,
    });
    expect(warmUpWebRTC).not.toHaveBeenCalled(); // not before connect (StrictMode's throwaway mount)
    ctl.connect();
    expect(warmUpWebRTC).toHaveBeenCalledTimes(1);
    expect(mediaAllowed).toHaveBeenCalledTimes(1);
    expect(FakePeerConnection.instances).toHaveLength(0);
    expect(gum).not.toHaveBeenCalled();
    ctl.dispose();
  });

  it('the offer and the answer go out without waiting for the tracks to be attached', async () => {
    // replaceTrack that never settles: the descriptions must not wait for it.
    const hang = (pc: FakePeerConnection) =>
      pc.transceivers.forEach((t) => (t.sender.replaceTrack = () => new Promise<void>(() => {})));
    for (const initiator of [true, false]) {
      FakeSocket.reset();
      FakePeerConnection.reset();
      const t = setup();
      t.sock.receive(welcome());
      t.ctl.start('video', []);
      await flush(); // the camera is on before the match
      const pc = FakePeerConnection.last();
      const addTransceiver = pc.addTransceiver.bind(pc);
      pc.addTransceiver = (...args) => {
        const tr = addTransceiver(...args);
        hang(pc);
        return tr;
      };
      const srd = pc.setRemoteDescription.bind(pc);
      pc.setRemoteDescription = async (d) => {
        await srd(d);
        hang(pc);
      };
      matched(t.sock, initiator);
      if (!initiator) srv(t.sock, { type: 'signal', room: 'room1', data: { sdp: { type: 'offer', sdp: 'o' } } });
      await flush();
      expect(t.sock.sentOf('signal').map((m) => (m.data as { sdp: { type: string } }).sdp.type)).toEqual([
        initiator ? 'offer' : 'answer',
      ]);
    }
  });

  it('publishes a view only when something changed', async () => {
    const { ctl, sock } = setup();
    sock.receive(welcome());
    ctl.start('text', []);
    const views: unknown[] = [];
    ctl.subscribe((v) => views.push(v));
    srv(sock, { type: 'waiting' }); // already waiting: nothing to render
    expect(views).toHaveLength(0);
    matched(sock, true, 'text');
    expect(views).toHaveLength(1);
  });

  it('waits for the camera before joining when a permission prompt may show', async () => {
    let resolveMedia: (s: unknown) => void = () => {};
    const { ctl, sock } = setup({ media: () => new Promise((r) => (resolveMedia = r)), allowed: false });
    sock.receive(welcome());
    ctl.start('video', []);
    await flush();
    expect(ctl.getView().phase).toBe('starting');
    expect(sock.sentOf('join')).toHaveLength(0);
    resolveMedia(cameraStream());
    await flush();
    expect(sock.sentOf('join')).toHaveLength(1);
  });

  it('camera denied: a clear error, no chat, and text mode on offer', async () => {
    const denied = Object.assign(new Error('denied'), { name: 'NotAllowedError' });
    const { ctl, sock } = setup({ media: () => Promise.reject(denied), allowed: false });
    sock.receive(welcome());
    ctl.start('video', ['cats']);
    await flush();
    expect(ctl.getView().mediaError).toBe('denied');
    expect(ctl.getView().phase).toBe('ended');
    expect(sock.sentOf('join')).toHaveLength(0);
    expect(FakePeerConnection.live).toBe(0);
    ctl.continueInText();
    expect(sock.sentOf('join')).toEqual([{ type: 'join', mode: 'text', interests: ['cats'], seq: anySeq }]);
    expect(ctl.getView().mediaError).toBeNull();
  });

  it('no camera at all: falls back to audio only before giving up', async () => {
    const notFound = Object.assign(new Error('none'), { name: 'NotFoundError' });
    const calls: MediaStreamConstraints[] = [];
    const { ctl, sock } = setup({
      media: (...args: unknown[]) => {
        const c = args[0] as MediaStreamConstraints;
        calls.push(c);
        return c.video ? Promise.reject(notFound) : Promise.resolve(new FakeMediaStream());
      },
    });
    sock.receive(welcome());
    ctl.start('video', []);
    await flush();
    expect(calls.map((c) => [!!c.audio, !!c.video])).toEqual([
      [true, true],
      [false, true],
      [true, false],
    ]);
    expect(ctl.getView().mediaError).toBeNull();
  });

  it('peer_left ends the chat, closes the connection and pre-creates the next one', async () => {
    const { ctl, sock } = setup();
    sock.receive(welcome());
    ctl.start('video', []);
    await flush();
    matched(sock, true);
    srv(sock, { type: 'typing', typing: true });
    expect(ctl.getView().strangerTyping).toBe(true);
    const first = FakePeerConnection.last();
    srv(sock, { type: 'peer_left', reason: 'next' });
    expect(ctl.getView().phase).toBe('ended');
    expect(statusText(ctl.getView()).main).toBe('Stranger has disconnected.');
    expect(ctl.getView().strangerTyping).toBe(false);
    expect(first.closed).toBe(true);
    expect(FakePeerConnection.instances).toHaveLength(2);
    expect(FakePeerConnection.live).toBe(1);
    // New chat after an ended one: the server session is idle, so join again.
    ctl.next();
    expect(sock.sent.at(-1)).toMatchObject({ type: 'join', mode: 'video' });
    expect(ctl.getView().phase).toBe('waiting');
    expect(FakePeerConnection.maxLive).toBe(1);
  });

  it('next during a chat sends next and swaps in a fresh peer connection', async () => {
    const { ctl, sock } = setup();
    sock.receive(welcome());
    ctl.start('video', []);
    await flush();
    matched(sock, true);
    await flush();
    ctl.sendChat('hello');
    expect(ctl.getView().lines).toEqual([{ id: 1, from: 'you', text: 'hello', seq: anySeq, delivery: 'pending' }]);
    const first = FakePeerConnection.last();
    ctl.next();
    expect(sock.sent.at(-1)).toMatchObject({ type: 'next' });
    expect(first.closed).toBe(true);
    expect(FakePeerConnection.live).toBe(1);
    expect(ctl.getView().lines).toEqual([]);
    expect(statusText(ctl.getView()).main).toBe('Looking for someone you can chat with…');
    // A late signal of the old chat is ignored: we are waiting now.
    srv(sock, { type: 'signal', room: 'room1', data: { sdp: { type: 'answer', sdp: 'late' } } });
    await flush();
    expect(FakePeerConnection.last().remoteDescription).toBeNull();
  });

  it('next over the server\'s join/next budget: leaves the chat the server kept going and says when to retry', () => {
    const { ctl, sock } = setup();
    sock.receive(welcome());
    ctl.start('text', []);
    matched(sock, false, 'text');
    ctl.next();
    expect(sock.sent.at(-1)).toMatchObject({ type: 'next' });
    srv(sock, { type: 'error', code: 'rate_limited', message: 'too many skips; try again in 2 s' });
    expect(sock.sent.at(-1)).toMatchObject({ type: 'leave' });
    expect(ctl.getView().phase).toBe('ended');
    expect(ctl.getView().notice).toBe('too many skips; try again in 2 s');
  });

  it('stop sends leave, goes back to the landing page and says so', () => {
    const { ctl, sock } = setup();
    sock.receive(welcome());
    ctl.start('text', []);
    matched(sock, false, 'text');
    ctl.stop();
    expect(sock.sent.at(-1)).toMatchObject({ type: 'leave' });
    expect(ctl.getView().phase).toBe('idle');
    expect(ctl.getView().notice).toBe('You left the chat.');
  });

  it('report ends the chat and confirms when the server acknowledges', () => {
    const { ctl, sock } = setup();
    sock.receive(welcome());
    ctl.start('text', []);
    matched(sock, false, 'text');
    ctl.report('spam');
    expect(sock.sent.at(-1)).toMatchObject({ type: 'report', reason: 'spam' });
    expect(ctl.getView().phase).toBe('ended');
    srv(sock, { type: 'reported' });
    expect(ctl.getView().notice).toMatch(/reported/);
  });

  it('report: refused while waiting, as the button is; reports the stranger of the chat that just ended', () => {
    const { ctl, sock } = setup();
    sock.receive(welcome());
    ctl.start('text', []);
    expect(ctl.getView().phase).toBe('waiting');
    ctl.report('spam');
    expect(sock.sentOf('report')).toEqual([]);
    matched(sock, false, 'text');
    srv(sock, { type: 'peer_left', reason: 'left' });
    ctl.report('spam');
    expect(sock.sentOf('report')).toHaveLength(1);
    expect(ctl.getView().phase).toBe('ended');
    srv(sock, { type: 'reported' });
    expect(ctl.getView().notice).toMatch(/reported/);
  });

  describe('evidence', () => {
    /** A fake capture that records what was true when it was called. */
    function fakeEvidence(o: { upload?: (token: string, b: Blob) => Promise<boolean>; picture?: Blob | null } = {}) {
      const seen: { stream: MediaStream; reportsSent: number; pcClosed: boolean; phase: string }[] = [];
      const uploads: { token: string; image: Blob }[] = [];
      const picture = o.picture === undefined ? new Blob(['jpeg'], { type: 'image/jpeg' }) : o.picture;
      let sock: FakeSocket | null = null;
      let ctl: CallController | null = null;
      const evidence: Evidence = {
        capture: (stream) => {
          seen.push({
            stream,
            reportsSent: sock?.sentOf('report').length ?? -1,
            pcClosed: FakePeerConnection.last().closed,
            phase: ctl?.getView().phase ?? '',
          });
          return Promise.resolve(picture);
        },
        upload: (token, image) => {
          uploads.push({ token, image });
          return o.upload ? o.upload(token, image) : Promise.resolve(true);
        },
      };
      return { evidence, seen, uploads, picture, bind: (s: FakeSocket, c: CallController) => ((sock = s), (ctl = c)) };
    }

    it('video: copies the partner frame before the report goes out and the call ends, uploads it with the token of reported', async () => {
      const ev = fakeEvidence();
      const t = setup({ evidence: ev.evidence });
      ev.bind(t.sock, t.ctl);
      t.sock.receive(welcome());
      t.ctl.start('video', []);
      await flush();
      matched(t.sock, true);
      await flush();
      const remote = t.ctl.getView().remoteStream;
      expect(remote).not.toBeNull();
      t.ctl.report('nudity');
      expect(ev.seen).toEqual([{ stream: remote, reportsSent: 0, pcClosed: false, phase: 'chatting' }]);
      expect(t.sock.sentOf('report')).toEqual([expect.objectContaining({ type: 'report', reason: 'nudity' })]);
      expect(t.ctl.getView().phase).toBe('ended');
      expect(ev.uploads).toEqual([]); // not before the server gave a token
      srv(t.sock, { type: 'reported', report: 'r1', evidenceToken: 'tok-1' });
      await flush();
      expect(ev.uploads).toHaveLength(1);
      expect(ev.uploads[0]?.token).toBe('tok-1');
      expect(ev.uploads[0]?.image).toBe(ev.picture);
      expect(t.ctl.getView().notice).toBe('Thanks. The stranger was reported.');
    });

    it('text: nothing is captured or uploaded', async () => {
      const ev = fakeEvidence();
      const { ctl, sock } = setup({ evidence: ev.evidence });
      ev.bind(sock, ctl);
      sock.receive(welcome());
      ctl.start('text', []);
      matched(sock, false, 'text');
      ctl.report('harassment');
      srv(sock, { type: 'reported', report: 'r2', evidenceToken: 'tok-2' });
      await flush();
      expect(ev.seen).toEqual([]);
      expect(ev.uploads).toEqual([]);
      expect(ctl.getView().notice).toBe('Thanks. The stranger was reported.');
    });

    it('a chat that already ended has no picture to send', async () => {
      const ev = fakeEvidence();
      const u = setup({ evidence: ev.evidence });
      ev.bind(u.sock, u.ctl);
      u.sock.receive(welcome());
      u.ctl.start('video', []);
      await flush();
      matched(u.sock, true);
      await flush();
      srv(u.sock, { type: 'peer_left', reason: 'left' });
      u.ctl.report('spam');
      srv(u.sock, { type: 'reported', report: 'r3', evidenceToken: 'tok-3' });
      await flush();
      expect(ev.seen).toEqual([]);
      expect(ev.uploads).toEqual([]);
    });

    it('a failed upload leaves the report standing, with a quiet note', async () => {
      const ev = fakeEvidence({ upload: () => Promise.resolve(false) });
      const t = setup({ evidence: ev.evidence });
      ev.bind(t.sock, t.ctl);
      t.sock.receive(welcome());
      t.ctl.start('video', []);
      await flush();
      matched(t.sock, true);
      await flush();
      t.ctl.report('hate');
      srv(t.sock, { type: 'reported', report: 'r4', evidenceToken: 'tok-4' });
      await flush();
      expect(ev.uploads).toHaveLength(1);
      expect(t.ctl.getView().phase).toBe('ended');
      expect(t.ctl.getView().notice).toBe('Thanks. The stranger was reported (the picture could not be sent).');
    });

    it('a server without evidence tokens (1.0) gets no upload', async () => {
      const ev = fakeEvidence();
      const t = setup({ evidence: ev.evidence });
      ev.bind(t.sock, t.ctl);
      t.sock.receive(welcome());
      t.ctl.start('video', []);
      await flush();
      matched(t.sock, true);
      await flush();
      t.ctl.report('other');
      srv(t.sock, { type: 'reported' });
      await flush();
      expect(ev.seen).toHaveLength(1);
      expect(ev.uploads).toEqual([]);
    });
  });

  describe('banned', () => {
    it('error banned on join: the banned phase, camera off, nothing can be started again', async () => {
      const stream = cameraStream();
      const { ctl, sock } = setup({ media: () => Promise.resolve(stream) });
      sock.receive(welcome());
      ctl.start('video', []);
      await flush();
      expect(sock.sentOf('join')).toHaveLength(1);
      srv(sock, { type: 'error', code: 'banned', message: 'banned' });
      expect(ctl.getView().phase).toBe('banned');
      expect(stream.getTracks().every((t) => (t as unknown as { stopped: boolean }).stopped)).toBe(true);
      ctl.next();
      ctl.home();
      ctl.start('text', []);
      expect(ctl.getView().phase).toBe('banned');
      expect(sock.sentOf('join')).toHaveLength(1);
      expect(sock.sentOf('next')).toEqual([]);
    });

    it('a ban pushed mid-chat (error banned, then close 4003): banned at once, no reconnect', async () => {
      const t = await videoCall(true);
      srv(t.sock, { type: 'error', code: 'banned', message: 'banned' });
      expect(t.ctl.getView().phase).toBe('banned');
      expect(t.pc.closed).toBe(true);
      t.sock.drop(4003);
      vi.advanceTimersByTime(60_000);
      expect(FakeSocket.instances).toHaveLength(1);
      expect(t.ctl.getView().phase).toBe('banned');
      expect(t.ctl.getView().link).toBe('closed');
    });

    it('close 4003 alone is enough', async () => {
      const t = await videoCall(false);
      t.sock.drop(4003);
      expect(t.ctl.getView().phase).toBe('banned');
      vi.advanceTimersByTime(60_000);
      expect(FakeSocket.instances).toHaveLength(1);
    });
  });

  it('home from a chat: typing false while still in it, then leave; the camera off and nothing of the chat left', async () => {
    const stream = cameraStream();
    const { ctl, sock } = setup({ media: () => Promise.resolve(stream) });
    sock.receive(welcome());
    ctl.start('video', ['cats']);
    await flush();
    matched(sock, true, 'video', ['cats']);
    await flush();
    ctl.sendChat('hi');
    ctl.inputChanged('and');
    srv(sock, { type: 'typing', typing: true });
    const pc = FakePeerConnection.last();
    const views: { phase: string }[] = [];
    ctl.subscribe((v) => views.push(v));
    ctl.home();
    expect(sock.sent.filter((f) => f.type !== 'watch').slice(-2)).toMatchObject([{ type: 'typing', typing: false }, { type: 'leave' }]);
    expect(views.map((v) => v.phase)).toEqual(['idle']); // one view, no half-reset one in between
    expect(ctl.getView()).toMatchObject({
      phase: 'idle',
      lines: [],
      room: null,
      commonInterests: [],
      strangerTyping: false,
      connection: 'none',
      remoteStream: null,
      localStream: null,
      pcCount: 0,
    });
    expect(pc.closed).toBe(true);
    expect(stream.getTracks().every((t) => t.stopped)).toBe(true);
    // The stranger's typing timer of the old chat is gone with it.
    vi.advanceTimersByTime(20_000);
    expect(views).toHaveLength(1);
  });

  it('a camera failure after the match ends the chat: leave, no stranger video, the error shown', async () => {
    let failMedia: (e: unknown) => void = () => {};
    const { ctl, sock } = setup({ media: () => new Promise((_, reject) => (failMedia = reject)), allowed: true });
    sock.receive(welcome());
    ctl.start('video', []);
    await flush();
    matched(sock, true);
    await flush();
    expect(ctl.getView().remoteStream).not.toBeNull();
    failMedia(Object.assign(new Error('busy'), { name: 'NotReadableError' }));
    await flush();
    expect(sock.sent.at(-1)).toMatchObject({ type: 'leave' });
    expect(ctl.getView()).toMatchObject({
      phase: 'ended',
      mediaError: 'busy',
      endReason: null,
      remoteStream: null,
      connection: 'none',
    });
    expect(FakePeerConnection.live).toBe(0);
    // The way out is text or another try, not Next.
    ctl.next();
    expect(sock.sentOf('next')).toEqual([]);
    expect(sock.sentOf('join')).toHaveLength(1);
  });

  it('chat and typing: typing true once, false after a pause; stranger typing clears on their message', () => {
    const { ctl, sock } = setup();
    sock.receive(welcome());
    ctl.start('text', []);
    matched(sock, true, 'text');
    ctl.inputChanged('h');
    ctl.inputChanged('he');
    ctl.inputChanged('hey');
    expect(sock.sentOf('typing')).toEqual([{ type: 'typing', typing: true, seq: anySeq }]);
    vi.advanceTimersByTime(3000);
    expect(sock.sentOf('typing').at(-1)).toMatchObject({ typing: false });
    ctl.inputChanged('hey!');
    expect(ctl.sendChat('  hey! ')).toBe(true);
    expect(sock.sentOf('chat')).toEqual([{ type: 'chat', text: 'hey!', seq: anySeq }]);
    vi.advanceTimersByTime(10_000);
    expect(sock.sentOf('typing')).toHaveLength(3); // no typing:false after a send
    expect(ctl.sendChat('   ')).toBe(false);

    srv(sock, { type: 'typing', typing: true });
    expect(ctl.getView().strangerTyping).toBe(true);
    srv(sock, { type: 'chat', text: 'hi there' });
    expect(ctl.getView().strangerTyping).toBe(false);
    expect(ctl.getView().lines.at(-1)).toMatchObject({ from: 'stranger', text: 'hi there' });
  });

  it('initiator restarts ICE after a failure, through signal', async () => {
    const { sock, pc } = await videoCall(true);
    srv(sock, { type: 'signal', room: 'room1', data: { sdp: { type: 'answer', sdp: 'a' } } });
    await flush();
    pc.setIceState('connected');
    pc.setIceState('disconnected');
    vi.advanceTimersByTime(1000);
    pc.setIceState('connected'); // recovered by itself: no restart
    vi.advanceTimersByTime(5000);
    await flush();
    expect(pc.offers).toHaveLength(1);
    pc.setIceState('failed');
    vi.advanceTimersByTime(0);
    await flush();
    expect(pc.offers.at(-1)).toEqual({ iceRestart: true });
    expect(sock.sentOf('signal').at(-1)).toMatchObject({ room: 'room1', data: { sdp: { type: 'offer', sdp: 'offer-2-restart' } } });
  });

  it('reads direct or relay from the selected candidate pair', async () => {
    const { ctl, sock } = setup();
    sock.receive(welcome());
    ctl.start('video', []);
    await flush();
    matched(sock, false);
    const pc = FakePeerConnection.last();
    expect(ctl.getView().connection).toBe('connecting');
    pc.selectPair('relay');
    pc.setIceState('connected');
    await flush();
    expect(ctl.getView().connection).toBe('relay');
    pc.selectPair('host');
    vi.advanceTimersByTime(3000);
    await flush();
    expect(ctl.getView().connection).toBe('direct');
  });

  it('the badge says stalled when no frame was decoded for 2 s, and reconnecting when ICE lost its path', async () => {
    const { ctl, pc } = await videoCall(false);
    pc.selectPair('host');
    pc.decoded(10);
    pc.setIceState('connected');
    await flush();
    expect(ctl.getView().connection).toBe('direct');
    const poll = async (frames: number) => {
      pc.decoded(frames);
      vi.advanceTimersByTime(1000);
      await flush();
    };
    await poll(20);
    expect(ctl.getView().connection).toBe('direct');
    await poll(20);
    expect(ctl.getView().connection).toBe('direct'); // one quiet second is no stall
    await poll(20);
    expect(ctl.getView().connection).toBe('stalled');
    await poll(25);
    expect(ctl.getView().connection).toBe('direct');
    pc.setIceState('disconnected');
    expect(ctl.getView().connection).toBe('reconnecting');
  });

  it('a dropped socket keeps the call: same peer connection, chat continues after resume', async () => {
    const { ctl, sock, pc } = await videoCall(true);
    sock.drop();
    expect(ctl.getView().link).toBe('reconnecting');
    ctl.sendChat('are you there?');
    vi.advanceTimersByTime(1000);
    const s2 = FakeSocket.last();
    s2.open();
    s2.receive(welcome({ resumed: true, resumeToken: 'tok2', state: 'chatting', lastSeq: 2 }));
    expect(ctl.getView().link).toBe('open');
    expect(ctl.getView().phase).toBe('chatting');
    expect(pc.closed).toBe(false);
    expect(FakePeerConnection.instances).toHaveLength(1);
    expect(s2.sentOf('chat')).toEqual([{ type: 'chat', text: 'are you there?', seq: anySeq }]);
  });

  it('a lost session ends the chat with an explanation', async () => {
    const { ctl, sock } = setup();
    sock.receive(welcome());
    ctl.start('text', []);
    matched(sock, true, 'text');
    sock.drop();
    vi.advanceTimersByTime(1000);
    const s2 = FakeSocket.last();
    s2.open();
    s2.receive(welcome({ session: 's_new', resumeToken: 'x', resumed: false }));
    expect(ctl.getView().phase).toBe('ended');
    expect(ctl.getView().endReason).toBe('session-lost');
    ctl.next();
    expect(s2.sent.at(-1)).toMatchObject({ type: 'join', mode: 'text', seq: 2 }); // numbered from 1 again: watch, then join
  });

  it('dispose closes everything: socket, peer connection, camera', async () => {
    const stream = cameraStream();
    const { ctl, sock } = setup({ media: () => Promise.resolve(stream) });
    sock.receive(welcome());
    ctl.start('video', []);
    await flush();
    ctl.dispose();
    expect(FakeSocket.live).toBe(0);
    expect(FakePeerConnection.live).toBe(0);
    expect(stream.getTracks().every((t) => t.stopped)).toBe(true);
  });
});

describe('selectedCandidateType', () => {
  const report = (entries: Record<string, unknown>[]) =>
    new Map(entries.map((e) => [e.id as string, e])) as unknown as RTCStatsReport;

  it('follows transport.selectedCandidatePairId (Chrome)', () => {
    const stats = report([
      { id: 'T', type: 'transport', selectedCandidatePairId: 'P2' },
      { id: 'P1', type: 'candidate-pair', localCandidateId: 'L1', nominated: true, state: 'succeeded' },
      { id: 'P2', type: 'candidate-pair', localCandidateId: 'L2', nominated: true, state: 'succeeded' },
      { id: 'L1', type: 'local-candidate', candidateType: 'host' },
      { id: 'L2', type: 'local-candidate', candidateType: 'relay' },
    ]);
    expect(selectedCandidateType(stats)).toBe('relay');
  });

  it('falls back to the selected or nominated pair (Firefox)', () => {
    const stats = report([
      { id: 'P1', type: 'candidate-pair', localCandidateId: 'L1', state: 'in-progress' },
      { id: 'P2', type: 'candidate-pair', localCandidateId: 'L2', selected: true, state: 'succeeded' },
      { id: 'L1', type: 'local-candidate', candidateType: 'relay' },
      { id: 'L2', type: 'local-candidate', candidateType: 'srflx' },
    ]);
    expect(selectedCandidateType(stats)).toBe('srflx');
    expect(selectedCandidateType(report([]))).toBeNull();
  });

describe('CallController: presence and delivery', () => {
  const presence = (sock: FakeSocket, camera: boolean, mic: boolean) =>
    srv(sock, { type: 'signal', room: 'room1', data: { presence: { camera, mic } } });

  it('tells the partner its presence at the match, on every switch and every 2 s, and stops when the chat ends', async () => {
    const { ctl, sock } = await videoCall(true);
    expect(sock.sentOf('presence').at(-1)).toMatchObject({ room: 'room1', data: { presence: { camera: true, mic: true } } });
    const n = sock.sentOf('presence').length;
    ctl.toggleCamera();
    expect(sock.sentOf('presence').at(-1)).toMatchObject({ data: { presence: { camera: false, mic: true } } });
    vi.advanceTimersByTime(4000);
    expect(sock.sentOf('presence').length).toBeGreaterThanOrEqual(n + 3);
    srv(sock, { type: 'peer_left', reason: 'left' });
    const after = sock.sentOf('presence').length;
    vi.advanceTimersByTime(10_000);
    expect(sock.sentOf('presence')).toHaveLength(after);
  });

  it('shows the partner camera and mic off, and their connection lost after 5 s without presence', async () => {
    const { ctl, sock, pc } = await videoCall(false);
    expect(ctl.getView().partner).toBeNull(); // an older client never says anything
    presence(sock, false, false);
    expect(ctl.getView().partner).toEqual({ camera: false, mic: false, link: 'ok' });
    // The partner's presence keeps coming (the fake server answers nothing else).
    for (let i = 0; i < 3; i++) {
      vi.advanceTimersByTime(2000);
      presence(sock, true, false);
    }
    expect(ctl.getView().partner).toEqual({ camera: true, mic: false, link: 'ok' });
    vi.advanceTimersByTime(4000);
    expect(ctl.getView().partner?.link).toBe('ok');
    vi.advanceTimersByTime(1500);
    expect(ctl.getView().partner?.link).toBe('lost');
    // The presence is not a negotiation message.
    expect(pc.remoteDescription).toBeNull();
    presence(sock, true, true);
    expect(ctl.getView().partner).toEqual({ camera: true, mic: true, link: 'ok' });
  });

  it('does not blame the partner while its own link is down, nor right after it is back', async () => {
    const { ctl, sock } = await videoCall(false);
    presence(sock, true, true);
    sock.drop();
    vi.advanceTimersByTime(60); // the resume attempt never opens
    vi.advanceTimersByTime(8000);
    expect(ctl.getView().link).toBe('reconnecting');
    expect(ctl.getView().partner?.link).toBe('ok');
    const s2 = FakeSocket.last();
    s2.open();
    s2.receive(welcome({ resumed: true, state: 'chatting', lastSeq: 0 }));
    vi.advanceTimersByTime(2000);
    expect(ctl.getView().partner?.link).toBe('ok');
  });

  it('shows a line pending until a pong or a resumed welcome covers its seq', () => {
    const { ctl, sock } = setup();
    sock.receive(welcome());
    ctl.start('text', []);
    matched(sock, false, 'text');
    ctl.sendChat('one');
    const seqOne = sock.sentOf('chat')[0]?.seq as number;
    expect(ctl.getView().lines.at(-1)).toMatchObject({ text: 'one', delivery: 'pending' });
    srv(sock, { type: 'pong', ack: seqOne - 1 });
    expect(ctl.getView().lines.at(-1)).toMatchObject({ delivery: 'pending' });
    srv(sock, { type: 'pong', ack: seqOne });
    expect(ctl.getView().lines.at(-1)).toMatchObject({ delivery: 'sent' });

    sock.drop();
    ctl.sendChat('offline');
    expect(ctl.getView().lines.at(-1)).toMatchObject({ text: 'offline', delivery: 'pending' });
    vi.advanceTimersByTime(1000);
    const s2 = FakeSocket.last();
    s2.open();
    s2.receive(welcome({ resumed: true, state: 'chatting', lastSeq: seqOne }));
    expect(ctl.getView().lines.at(-1)).toMatchObject({ delivery: 'pending' });
    const seqTwo = s2.sentOf('chat')[0]?.seq as number;
    s2.receive({ type: 'pong', seq: ++seq, ack: seqTwo });
    expect(ctl.getView().lines.map((l) => (l.from === 'you' ? l.delivery : ''))).toEqual(['sent', 'sent']);
  });
});

describe('CallController: counts, mode switch, remembered privacy', () => {
  it('watches the counts on the landing page and while waiting, not in a chat, and shows what is pushed', () => {
    const { ctl, sock } = setup();
    sock.receive(welcome());
    expect(sock.sentOf('watch').at(-1)).toMatchObject({ counts: true });
    srv(sock, { type: 'counts', online: 5, waiting: { video: 2, text: 0 } });
    expect(ctl.getView().online).toBe(5);
    expect(ctl.getView().waiting).toEqual({ video: 2, text: 0 });
    ctl.start('text', []);
    matched(sock, false, 'text');
    expect(sock.sentOf('watch').at(-1)).toMatchObject({ counts: false });
    srv(sock, { type: 'peer_left', reason: 'left' });
    expect(sock.sentOf('watch').at(-1)).toMatchObject({ counts: true });
  });

  it('switchMode leaves the queue and searches in the other mode', () => {
    const { ctl, sock } = setup();
    sock.receive(welcome());
    ctl.start('text', ['cats']);
    ctl.switchMode();
    expect(sock.sentOf('leave')).toHaveLength(1);
    expect(ctl.getView().mode).toBe('video');
  });

  it('remembers Hide my IP across reloads', () => {
    const store = new Map<string, string>();
    const storage = { getItem: (k: string) => store.get(k) ?? null, setItem: (k: string, v: string) => void store.set(k, v) };
    const turn = { iceServers: [{ urls: 'turn:127.0.0.1:3478', username: 'u', credential: 'c' }] };
    const make = () => {
      const ctl = new CallController({
        createSignaling: (handlers) =>
          new SignalingClient({ url: 'ws://node.test/ws', handlers, createSocket: (u) => new FakeSocket(u), random: () => 0 }),
        createPeerConnection: (c) => new FakePeerConnection(c) as unknown as RTCPeerConnection,
        createMediaStream: () => new FakeMediaStream() as unknown as MediaStream,
        storage,
      });
      ctl.connect();
      const s = FakeSocket.last();
      s.open();
      s.receive(welcome(turn));
      return ctl;
    };
    const first = make();
    expect(first.getView().privacy).toBe(false);
    first.setPrivacy(true);
    first.dispose();
    expect(make().getView().privacy).toBe(true);
  });
});
});

describe('CallController: ICE servers of protocol 1.1 (TURN credentials come with matched)', () => {
  const stun = { urls: 'stun:127.0.0.1:3478' };
  const turn = { urls: ['turn:127.0.0.1:3478?transport=udp'], username: '1700000000:s_1', credential: 'c1' };

  it('offers privacy mode from welcome.turn and calls with matched.iceServers, set before the offer', async () => {
    const { ctl, sock } = setup();
    sock.receive(welcome({ iceServers: [stun], turn: true }));
    expect(ctl.getView().turnAvailable).toBe(true);
    ctl.setPrivacy(true);
    ctl.start('video', []);
    await flush();
    const pc = FakePeerConnection.last();
    // Made while waiting, with what the welcome had: no credential yet.
    expect(pc.config.iceServers).toEqual([stun]);
    expect(pc.config.iceTransportPolicy).toBe('relay');
    const configAtOffer: RTCConfiguration[] = [];
    const createOffer = pc.createOffer.bind(pc);
    pc.createOffer = (opts?: RTCOfferOptions) => {
      configAtOffer.push(pc.getConfiguration());
      return createOffer(opts);
    };
    srv(sock, { type: 'matched', room: 'room1', initiator: true, mode: 'video', commonInterests: [], iceServers: [stun, turn] });
    await flush();
    expect(configAtOffer).toHaveLength(1);
    expect(configAtOffer[0]?.iceServers).toEqual([stun, turn]);
    expect(configAtOffer[0]?.iceTransportPolicy).toBe('relay');
  });

  it('a 1.0 server: matched without iceServers keeps the welcome list and its credentials', async () => {
    const { ctl, sock } = setup();
    sock.receive(welcome({ iceServers: [stun, turn] }));
    expect(ctl.getView().turnAvailable).toBe(true);
    ctl.start('video', []);
    await flush();
    matched(sock, true);
    await flush();
    const pc = FakePeerConnection.last();
    expect(pc.config.iceServers).toEqual([stun, turn]);
    expect(pc.offers).toHaveLength(1);
  });

  it('a resume mid-call takes the renewed credentials of the resumed chat, not the welcome list', async () => {
    const { sock, pc } = await videoCall(true);
    sock.drop();
    vi.advanceTimersByTime(1000);
    const s2 = FakeSocket.last();
    s2.open();
    const renewed = { ...turn, username: '1700003600:s_1', credential: 'c2' };
    s2.receive(
      welcome({
        resumed: true,
        resumeToken: 'tok2',
        state: 'chatting',
        lastSeq: 1,
        iceServers: [stun],
        turn: true,
        chat: { room: 'room1', initiator: true, mode: 'video', commonInterests: [], iceServers: [stun, renewed] },
      }),
    );
    expect(pc.config.iceServers).toEqual([stun, renewed]);
  });

  it('without a TURN relay (no welcome.turn, no TURN entry) privacy mode stays off', () => {
    const { ctl, sock } = setup();
    sock.receive(welcome({ iceServers: [stun] }));
    expect(ctl.getView().turnAvailable).toBe(false);
  });
});
