import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { FakeSocket, welcome } from '../test/fakes';
import { backoffDelay, defaultBackoff } from './backoff';
import { SignalingClient, type LinkStatus } from './client';
import { hasTurn, normalizeInterests, parseServerMsg, type SequencedServerMsg, type WelcomeMsg } from './protocol';

function setup(random = () => 0.5) {
  const messages: SequencedServerMsg[] = [];
  const welcomes: { msg: WelcomeMsg; lost: boolean }[] = [];
  const statuses: LinkStatus[] = [];
  const client = new SignalingClient({
    url: 'ws://node.test/ws',
    createSocket: (url) => new FakeSocket(url),
    random,
    handlers: {
      onMessage: (m) => messages.push(m),
      onWelcome: (msg, lost) => welcomes.push({ msg, lost }),
      onStatus: (s) => statuses.push(s),
    },
  });
  return { client, messages, welcomes, statuses };
}

beforeEach(() => {
  FakeSocket.reset();
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('SignalingClient', () => {
  it('connects without resume, queues frames until welcome, then sends them numbered from 1', () => {
    const { client, welcomes, statuses } = setup();
    client.connect();
    const s = FakeSocket.last();
    expect(s.url).toBe('ws://node.test/ws');
    client.send({ type: 'join', mode: 'text' });
    s.open();
    expect(s.sent).toEqual([]); // nothing before welcome
    s.receive(welcome());
    expect(welcomes).toHaveLength(1);
    expect(welcomes[0]?.lost).toBe(false);
    expect(statuses).toEqual(['open']);
    expect(client.session).toBe('s_1');
    expect(s.sent).toEqual([{ type: 'join', mode: 'text', seq: 1 }]);
    client.send({ type: 'chat', text: 'hi' });
    client.send({ type: 'typing', typing: false });
    expect(s.sent.map((f) => f.seq)).toEqual([1, 2, 3]);
  });

  it('delivers server frames in order once and drops duplicates and unknown types', () => {
    const { client, messages } = setup();
    client.connect();
    const s = FakeSocket.last();
    s.open();
    s.receive(welcome());
    s.receive({ type: 'waiting', seq: 1 });
    s.receive({ type: 'matched', seq: 2, room: 'r1', initiator: true, mode: 'video', commonInterests: ['music'] });
    s.receive({ type: 'waiting', seq: 2 }); // duplicate seq
    s.receive({ type: 'waiting', seq: 1 }); // older
    s.receive({ type: 'future_extension', seq: 3 });
    s.receiveRaw('not json');
    s.receive({ type: 'chat', seq: 4, text: 'hello' });
    expect(messages.map((m) => m.type)).toEqual(['waiting', 'matched', 'chat']);
    expect(client.lastServerSeq).toBe(4);
  });

  it('resumes with the token and the highest seq received, and re-sends only what the server missed', () => {
    const { client, messages, welcomes, statuses } = setup(() => 0);
    client.connect();
    let s = FakeSocket.last();
    s.open();
    s.receive(welcome());
    client.send({ type: 'join', mode: 'video' }); // seq 1
    s.receive({ type: 'waiting', seq: 1 });
    s.receive({ type: 'matched', seq: 2, room: 'r1', initiator: false, mode: 'video', commonInterests: [] });
    client.send({ type: 'chat', text: 'one' }); // seq 2, reached the server
    client.send({ type: 'chat', text: 'two' }); // seq 3, written into a dying socket
    s.drop();
    expect(statuses.at(-1)).toBe('reconnecting');
    client.send({ type: 'chat', text: 'three' }); // seq 4, sent while down

    // random() = 0: the first retry waits half of the initial ceiling.
    vi.advanceTimersByTime(defaultBackoff.initialMs / 2 - 1);
    expect(FakeSocket.instances).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(FakeSocket.instances).toHaveLength(2);
    s = FakeSocket.last();
    expect(s.url).toBe('ws://node.test/ws?resume=tok1&last=2');

    s.open();
    s.receive(welcome({ resumed: true, resumeToken: 'tok2', state: 'chatting', lastSeq: 2 }));
    expect(welcomes.at(-1)?.lost).toBe(false);
    expect(s.sent).toEqual([
      { type: 'chat', text: 'two', seq: 3 },
      { type: 'chat', text: 'three', seq: 4 },
    ]);
    // The server re-sends frames after last=2; one we had is dropped.
    s.receive({ type: 'matched', seq: 2, room: 'r1', initiator: false, mode: 'video', commonInterests: [] });
    s.receive({ type: 'chat', seq: 3, text: 'while you were away' });
    expect(messages.map((m) => m.seq)).toEqual([1, 2, 3]);
    // The next resume uses the new token.
    s.drop();
    vi.advanceTimersByTime(defaultBackoff.initialMs);
    expect(FakeSocket.last().url).toBe('ws://node.test/ws?resume=tok2&last=3');
  });

  it('starts over when the resume is refused (new session)', () => {
    const { client, welcomes } = setup(() => 0);
    client.connect();
    let s = FakeSocket.last();
    s.open();
    s.receive(welcome());
    client.send({ type: 'join', mode: 'text' });
    s.receive({ type: 'waiting', seq: 1 });
    s.drop();
    client.send({ type: 'leave' });
    vi.advanceTimersByTime(10_000);
    s = FakeSocket.last();
    s.open();
    s.receive(welcome({ session: 's_2', resumeToken: 'tokB', resumed: false }));
    expect(welcomes.at(-1)?.lost).toBe(true);
    expect(s.sent).toEqual([]); // frames of the lost session are not replayed
    expect(client.lastServerSeq).toBe(0);
    client.send({ type: 'join', mode: 'text' });
    expect(s.sent).toEqual([{ type: 'join', mode: 'text', seq: 1 }]);
  });

  it('backs off exponentially with jitter, capped, and resets after a welcome', () => {
    const { client } = setup(() => 1);
    client.connect();
    const delays: number[] = [];
    for (let i = 0; i < 8; i++) {
      const before = FakeSocket.instances.length;
      FakeSocket.last().drop();
      let waited = 0;
      while (FakeSocket.instances.length === before) {
        vi.advanceTimersByTime(1);
        waited++;
      }
      delays.push(waited);
    }
    // random() = 1: the whole ceiling: 250, 500, 1000, … up to 10 s.
    expect(delays).toEqual([250, 500, 1000, 2000, 4000, 8000, 10000, 10000]);
    const s = FakeSocket.last();
    s.open();
    s.receive(welcome());
    s.drop();
    vi.advanceTimersByTime(249);
    expect(FakeSocket.last()).toBe(s);
    vi.advanceTimersByTime(1);
    expect(FakeSocket.last()).not.toBe(s);
  });

  it('does not fight another connection that took the session over (4001)', () => {
    const { client, statuses } = setup();
    client.connect();
    const s = FakeSocket.last();
    s.open();
    s.receive(welcome());
    s.drop(4001);
    vi.advanceTimersByTime(60_000);
    expect(FakeSocket.instances).toHaveLength(1);
    expect(statuses.at(-1)).toBe('closed');
  });

  it('does not reconnect after a ban (close 4003) and says why it ended', () => {
    const ended: string[] = [];
    const client = new SignalingClient({
      url: 'ws://node.test/ws',
      createSocket: (url) => new FakeSocket(url),
      handlers: { onEnded: (why) => ended.push(why) },
    });
    client.connect();
    const s = FakeSocket.last();
    s.open();
    s.receive(welcome());
    s.drop(4003);
    vi.advanceTimersByTime(60_000);
    expect(FakeSocket.instances).toHaveLength(1);
    expect(client.status).toBe('closed');
    expect(ended).toEqual(['banned']);
  });

  it('parses the 1.1 fields of reported', () => {
    expect(parseServerMsg('{"type":"reported","seq":4,"report":"r1","evidenceToken":"tok"}')).toEqual({
      type: 'reported',
      seq: 4,
      report: 'r1',
      evidenceToken: 'tok',
    });
    expect(parseServerMsg('{"type":"reported","seq":4}')).toEqual({ type: 'reported', seq: 4 });
  });

  it('dispose closes with 1000 (ends the session) and never reconnects', () => {
    const { client } = setup();
    client.connect();
    const s = FakeSocket.last();
    s.open();
    s.receive(welcome());
    client.dispose();
    expect(s.closedWith).toBe(1000);
    expect(FakeSocket.live).toBe(0);
    vi.advanceTimersByTime(60_000);
    expect(FakeSocket.instances).toHaveLength(1);
  });

  it('reconnectNow closes the old socket with a resumable code and resumes at once', () => {
    const { client } = setup();
    client.connect();
    const s = FakeSocket.last();
    s.open();
    s.receive(welcome());
    s.receive({ type: 'waiting', seq: 1 });
    client.reconnectNow();
    expect(s.closedWith).toBe(4000);
    expect(FakeSocket.last().url).toBe('ws://node.test/ws?resume=tok1&last=1');
    expect(FakeSocket.live).toBe(1);
  });
});

describe('backoffDelay', () => {
  it('stays within [ceiling/2, ceiling]', () => {
    expect(backoffDelay(0, () => 0)).toBe(125);
    expect(backoffDelay(0, () => 1)).toBe(250);
    expect(backoffDelay(3, () => 0.5)).toBe(1500);
    expect(backoffDelay(50, () => 1)).toBe(10_000);
  });
});

describe('protocol helpers', () => {
  it('normalises interests like the server (rule 2)', () => {
    const long = 'x'.repeat(33);
    expect(normalizeInterests(['  Music ', 'music', '', 'FILMS', long, 'ü'.repeat(32)])).toEqual([
      'music',
      'films',
      'ü'.repeat(32),
    ]);
    expect(normalizeInterests(Array.from({ length: 15 }, (_, i) => `t${i}`))).toHaveLength(10);
  });

  it('detects TURN servers', () => {
    expect(hasTurn([{ urls: 'stun:a' }])).toBe(false);
    expect(hasTurn([{ urls: ['stun:a', 'turn:a:3478?transport=udp'] }])).toBe(true);
    expect(hasTurn([{ urls: 'turns:a:443' }])).toBe(true);
  });

  it('parses messages defensively', () => {
    expect(parseServerMsg('{"type":"matched","seq":1,"room":"r","initiator":true,"mode":"audio"}')).toBeNull();
    expect(parseServerMsg('{"type":"chat","seq":"1","text":"x"}')).toBeNull();
    expect(parseServerMsg('[1]')).toBeNull();
    expect(parseServerMsg('{"type":"matched","seq":1,"room":"r","initiator":false,"mode":"text"}')).toEqual({
      type: 'matched',
      seq: 1,
      room: 'r',
      initiator: false,
      mode: 'text',
      commonInterests: [],
    });
  });

  it('parses the ICE servers of protocol 1.1: matched.iceServers, welcome.turn, a resumed chat', () => {
    const turn = { urls: ['turn:a:3478'], username: '1:s', credential: 'c' };
    const m = parseServerMsg(
      JSON.stringify({ type: 'matched', seq: 1, room: 'r', initiator: true, mode: 'video', commonInterests: [], iceServers: [turn, 7] }),
    );
    expect(m).toMatchObject({ type: 'matched', iceServers: [turn] });
    const w = parseServerMsg(
      JSON.stringify({
        type: 'welcome',
        session: 's',
        resumeToken: 't',
        resumed: true,
        iceServers: [],
        turn: true,
        state: 'chatting',
        chat: { room: 'r', initiator: false, mode: 'video', commonInterests: [], iceServers: [turn] },
      }),
    );
    expect(w).toMatchObject({ type: 'welcome', turn: true, chat: { iceServers: [turn] } });
    expect(parseServerMsg(JSON.stringify({ type: 'welcome', session: 's', resumeToken: 't', iceServers: [] }))).toMatchObject({
      turn: false,
    });
  });
});

describe('SignalingClient heartbeat', () => {
  function hbSetup() {
    const statuses: LinkStatus[] = [];
    const acks: number[] = [];
    const client = new SignalingClient({
      url: 'ws://node.test/ws',
      createSocket: (url) => new FakeSocket(url),
      random: () => 0,
      heartbeat: { intervalMs: 1000, deadAfterMs: 3000, connectTimeoutMs: 5000 },
      handlers: { onStatus: (s) => statuses.push(s), onAck: (n) => acks.push(n) },
    });
    client.connect();
    const s = FakeSocket.last();
    s.open();
    s.receive(welcome());
    return { client, s, statuses, acks };
  }

  it('pings after a second of silence and stays open while pongs come back', () => {
    const { client, s, acks } = hbSetup();
    vi.advanceTimersByTime(1000);
    expect(s.sentOf('ping')).toHaveLength(1);
    expect(s.sentOf('ping')[0]?.seq).toBeUndefined(); // never kept for a resume
    for (let i = 1; i <= 10; i++) {
      s.receive({ type: 'pong', seq: i, ack: 0 });
      vi.advanceTimersByTime(1000);
    }
    expect(s.sentOf('ping')).toHaveLength(11);
    expect(client.status).toBe('open');
    expect(acks).toContain(0);
  });

  it('takes a link that answers nothing for 3 s after a ping as dead, and resumes on a new socket', () => {
    const { client, s, statuses } = hbSetup();
    vi.advanceTimersByTime(1000); // ping
    vi.advanceTimersByTime(2900);
    expect(client.status).toBe('open');
    vi.advanceTimersByTime(600);
    expect(client.status).toBe('reconnecting');
    expect(statuses).toContain('reconnecting');
    expect(s.closedWith).toBe(4000); // keeps the session for the resume
    vi.advanceTimersByTime(300);
    expect(FakeSocket.last()).not.toBe(s);
    expect(FakeSocket.last().url).toContain('resume=');
  });

  it('gives up a connect that is never welcomed and tries again', () => {
    const { s } = hbSetup();
    vi.advanceTimersByTime(4500); // dead
    const second = FakeSocket.last();
    expect(second).not.toBe(s);
    vi.advanceTimersByTime(5000); // never opens: a cut network
    expect(second.closedWith).toBe(4000);
    vi.advanceTimersByTime(1000);
    expect(FakeSocket.instances.length).toBeGreaterThanOrEqual(3);
  });

  it('flush pings at once, and the pong and a resumed welcome report what the server has', () => {
    const { client, s, acks } = hbSetup();
    client.send({ type: 'chat', text: 'hi' }); // seq 1
    client.flush();
    expect(s.sentOf('ping')).toHaveLength(1);
    s.receive({ type: 'pong', seq: 1, ack: 1 });
    expect(acks).toEqual([1]);
    client.send({ type: 'chat', text: 'again' }); // seq 2
    s.drop();
    vi.advanceTimersByTime(300);
    const s2 = FakeSocket.last();
    s2.open();
    s2.receive(welcome({ resumed: true, state: 'idle', lastSeq: 2 }));
    expect(acks).toEqual([1, 2]);
  });

  it('a burst of lines costs one ping per round trip, and the last pong covers them all', () => {
    const { client, s, acks } = hbSetup();
    for (let i = 0; i < 5; i++) {
      client.send({ type: 'chat', text: `line ${i}` });
      client.flush();
    }
    expect(s.sentOf('ping')).toHaveLength(1);
    s.receive({ type: 'pong', seq: 1, ack: 1 });
    // Lines 2-5 were sent after that ping: another goes out at once.
    expect(s.sentOf('ping')).toHaveLength(2);
    s.receive({ type: 'pong', seq: 2, ack: 5 });
    expect(s.sentOf('ping')).toHaveLength(2);
    expect(acks).toEqual([1, 5]);
  });
});
