import { describe, expect, it } from 'vitest';
import { allowedActions, enterPhase, type PhaseEntry } from './phase';
import { initialView, type CallView, type Phase } from './view';

const stream = {} as MediaStream;

/** A view in the middle of a video chat, with every chat field set. */
const chatting: CallView = {
  ...initialView,
  link: 'open',
  session: 's1',
  phase: 'chatting',
  mode: 'video',
  room: 'room1',
  initiator: true,
  commonInterests: ['music'],
  lines: [{ id: 1, from: 'you', text: 'hi', seq: 1, delivery: 'sent' }],
  strangerTyping: true,
  partner: { camera: false, mic: true, link: 'lost' },
  connection: 'direct',
  localStream: stream,
  remoteStream: stream,
  micOn: false,
  notice: 'Slow down a little.',
  pcCount: 1,
};

/** The fields no phase entry may touch: the link, the camera and the settings. */
const kept = (v: CallView) => ({
  link: v.link,
  session: v.session,
  online: v.online,
  privacy: v.privacy,
  localStream: v.localStream,
  micOn: v.micOn,
  cameraOn: v.cameraOn,
  pcCount: v.pcCount,
});

const fresh = {
  lines: [],
  endReason: null,
  mediaError: null,
  notice: null,
  room: null,
  commonInterests: [],
  strangerTyping: false,
  connection: 'none',
  remoteStream: null,
};

describe('enterPhase', () => {
  it.each<PhaseEntry>([{ phase: 'idle' }, { phase: 'starting', mode: 'video' }, { phase: 'waiting' }, { phase: 'banned' }])(
    '$phase starts clean: nothing of the last chat is left',
    (e) => {
      const ended = enterPhase(chatting, { phase: 'ended', endReason: 'next', mediaError: null });
      for (const from of [chatting, ended, { ...ended, mediaError: 'denied' as const }]) {
        const v = enterPhase(from, e);
        expect(v).toMatchObject({ phase: e.phase, ...fresh });
        expect(kept(v)).toEqual(kept(from));
      }
    },
  );

  it('waiting and starting take the mode of a new start; waiting after a chat keeps it', () => {
    expect(enterPhase({ ...chatting, phase: 'idle' }, { phase: 'waiting', mode: 'text' }).mode).toBe('text');
    expect(enterPhase({ ...chatting, phase: 'idle' }, { phase: 'starting', mode: 'video' }).mode).toBe('video');
    expect(enterPhase({ ...chatting, mode: 'text' }, { phase: 'waiting' }).mode).toBe('text');
  });

  it('chatting starts a new log with the facts of the match', () => {
    const remote = {} as MediaStream;
    const waiting = enterPhase(chatting, { phase: 'waiting' });
    const v = enterPhase(
      { ...waiting, notice: 'Slow down a little.', lines: [{ id: 9, from: 'stranger', text: 'old' }] },
      {
        phase: 'chatting',
        mode: 'video',
        room: 'room2',
        initiator: false,
        commonInterests: ['films'],
        connection: 'connecting',
        remoteStream: remote,
      },
    );
    expect(v).toMatchObject({
      phase: 'chatting',
      room: 'room2',
      initiator: false,
      commonInterests: ['films'],
      connection: 'connecting',
      remoteStream: remote,
      lines: [],
      notice: null,
      endReason: null,
      mediaError: null,
      strangerTyping: false,
    });
    expect(kept(v)).toEqual(kept(waiting));
  });

  it('ended keeps the log, the room and the notice, and drops what only a live chat has', () => {
    const v = enterPhase(chatting, { phase: 'ended', endReason: 'left', mediaError: null });
    expect(v).toMatchObject({
      phase: 'ended',
      endReason: 'left',
      mediaError: null,
      lines: chatting.lines,
      room: 'room1',
      commonInterests: ['music'],
      notice: 'Slow down a little.',
      strangerTyping: false,
      connection: 'none',
      remoteStream: null,
    });
    expect(kept(v)).toEqual(kept(chatting));
    const failed = enterPhase(enterPhase(chatting, { phase: 'waiting' }), {
      phase: 'ended',
      endReason: null,
      mediaError: 'denied',
    });
    expect(failed).toMatchObject({ phase: 'ended', endReason: null, mediaError: 'denied' });
  });

  it('returns a new view and leaves the old one as it was', () => {
    const copy = structuredClone({ ...chatting, localStream: null, remoteStream: null });
    const v = enterPhase({ ...chatting, localStream: null, remoteStream: null }, { phase: 'idle' });
    expect(v).not.toBe(chatting);
    expect({ ...chatting, localStream: null, remoteStream: null }).toEqual(copy);
  });
});

describe('allowedActions', () => {
  const at = (phase: Phase, more: Partial<CallView> = {}) => allowedActions({ ...chatting, phase, ...more });

  it('next: in a chat or after one, never while starting or waiting, nor without the camera', () => {
    expect(at('chatting').next).toBe(true);
    expect(at('ended', { endReason: 'left' }).next).toBe(true);
    expect(at('ended', { endReason: null }).next).toBe(true);
    expect(at('waiting').next).toBe(false);
    expect(at('starting').next).toBe(false);
    expect(at('idle').next).toBe(false);
    expect(at('ended', { mediaError: 'denied' }).next).toBe(false);
  });

  it('stop: while starting, waiting, chatting, and after a chat ended (it goes home)', () => {
    expect(at('starting').stop).toBe(true);
    expect(at('waiting').stop).toBe(true);
    expect(at('chatting').stop).toBe(true);
    expect(at('ended', { endReason: 'left' }).stop).toBe(true);
    expect(at('idle').stop).toBe(false);
  });

  it('report: the current stranger or the last one, never while waiting', () => {
    expect(at('chatting').report).toBe(true);
    expect(at('waiting').report).toBe(false);
    expect(at('starting').report).toBe(false);
    expect(at('idle').report).toBe(false);
    for (const reason of ['next', 'left', 'disconnected', 'reported', 'you-left', 'session-lost'] as const) {
      expect(at('ended', { endReason: reason }).report).toBe(true);
    }
    expect(at('ended', { endReason: 'you-reported' }).report).toBe(false);
    // Ended without a chat: the search stopped (overloaded) or the camera failed.
    expect(at('ended', { endReason: null }).report).toBe(false);
  });

  it('chat only while chatting', () => {
    for (const phase of ['idle', 'starting', 'waiting', 'ended'] as const) expect(at(phase).chat).toBe(false);
    expect(at('chatting').chat).toBe(true);
  });

  it('mic and camera in video mode while the camera works; recovery only after it failed', () => {
    expect(at('waiting').toggleMedia).toBe(true);
    expect(at('chatting', { mode: 'text' }).toggleMedia).toBe(false);
    expect(at('ended', { mediaError: 'busy' }).toggleMedia).toBe(false);
    expect(at('ended', { mediaError: 'busy' }).recoverMedia).toBe(true);
    expect(at('ended').recoverMedia).toBe(false);
  });

  it('banned: nothing at all', () => {
    expect(Object.values(at('banned')).some(Boolean)).toBe(false);
  });
});
