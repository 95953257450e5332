import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { FakeSocket, welcome } from '../test/fakes';
import { SignalingClient } from './client';
import type { PowChallenge, SequencedServerMsg } from './protocol';

const challenge = (n: number): PowChallenge => ({
  algorithm: 'SHA-256',
  challenge: `c${n}`,
  maxnumber: 50000,
  salt: `s${n}?expires=1&`,
  signature: `g${n}`,
});

/** A solver the test answers by hand: solutions are "sol:<challenge>". */
function manualSolver() {
  const pending: { c: PowChallenge; signal: AbortSignal; resolve: (p: string) => void; reject: (e: Error) => void }[] = [];
  const solve = (c: PowChallenge, signal: AbortSignal) =>
    new Promise<string>((resolve, reject) => pending.push({ c, signal, resolve, reject }));
  const finish = async (i = pending.length - 1) => {
    const p = pending[i];
    if (!p) throw new Error('no solve pending');
    p.resolve(`sol:${p.c.challenge}`);
    await Promise.resolve();
  };
  return { solve, pending, finish };
}

function setup() {
  const solver = manualSolver();
  const messages: SequencedServerMsg[] = [];
  const client = new SignalingClient({
    url: 'ws://node.test/ws',
    createSocket: (url) => new FakeSocket(url),
    solvePow: solver.solve,
    handlers: { onMessage: (m) => messages.push(m) },
  });
  client.connect();
  const s = FakeSocket.last();
  s.open();
  return { client, s, solver, messages };
}

beforeEach(() => {
  FakeSocket.reset();
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('proof of work', () => {
  it('starts solving at the welcome and attaches the solution to the first join only', async () => {
    const { client, s, solver } = setup();
    s.receive(welcome({ pow: challenge(1) }));
    expect(solver.pending.map((p) => p.c.challenge)).toEqual(['c1']); // before anyone clicks
    await solver.finish();
    client.send({ type: 'join', mode: 'text' });
    client.send({ type: 'leave' });
    client.send({ type: 'next' });
    expect(s.sent).toEqual([
      { type: 'join', mode: 'text', seq: 1, pow: 'sol:c1' },
      { type: 'leave', seq: 2 },
      { type: 'next', seq: 3 },
    ]);
  });

  it('holds a join sent before the solution, and what follows it, then sends them in order', async () => {
    const { client, s, solver } = setup();
    client.send({ type: 'watch', counts: true }); // before the welcome
    s.receive(welcome({ pow: challenge(1) }));
    client.send({ type: 'join', mode: 'video' });
    client.send({ type: 'chat', text: 'early' });
    expect(s.sent).toEqual([{ type: 'watch', counts: true, seq: 1 }]);
    await solver.finish();
    expect(s.sent).toEqual([
      { type: 'watch', counts: true, seq: 1 },
      { type: 'join', mode: 'video', seq: 2, pow: 'sol:c1' },
      { type: 'chat', text: 'early', seq: 3 },
    ]);
  });

  it('holds a join queued before the welcome that asks for proof of work', async () => {
    const { client, s, solver } = setup();
    client.send({ type: 'join', mode: 'text' });
    s.receive(welcome({ pow: challenge(1) }));
    expect(s.sent).toEqual([]);
    await solver.finish();
    expect(s.sent).toEqual([{ type: 'join', mode: 'text', seq: 1, pow: 'sol:c1' }]);
  });

  it('on pow_required solves the fresh challenge and retries once, invisibly; a second refusal goes through', async () => {
    const { client, s, solver, messages } = setup();
    s.receive(welcome({ pow: challenge(1) }));
    await solver.finish();
    client.send({ type: 'join', mode: 'text', interests: ['go'] });
    s.receive({ type: 'error', seq: 1, code: 'pow_required', message: 'expired', pow: challenge(2) });
    expect(messages).toEqual([]);
    expect(s.sent).toHaveLength(1);
    await solver.finish();
    expect(s.sent[1]).toEqual({ type: 'join', mode: 'text', interests: ['go'], seq: 2, pow: 'sol:c2' });
    s.receive({ type: 'error', seq: 2, code: 'pow_required', message: 'again', pow: challenge(3) });
    expect(messages.map((m) => m.type === 'error' && m.code)).toEqual(['pow_required']);
    expect(solver.pending).toHaveLength(2); // no third solve
  });

  it('needs nothing when the welcome brings no challenge', async () => {
    const { client, s, solver } = setup();
    s.receive(welcome());
    client.send({ type: 'join', mode: 'text' });
    expect(s.sent).toEqual([{ type: 'join', mode: 'text', seq: 1 }]);
    expect(solver.pending).toHaveLength(0);
  });

  it('sends the join without a solution when the solver fails, so the server says why', async () => {
    const { client, s, solver, messages } = setup();
    s.receive(welcome({ pow: challenge(1) }));
    client.send({ type: 'next' });
    solver.pending[0]?.reject(new Error('no worker'));
    await Promise.resolve();
    await Promise.resolve();
    expect(s.sent).toEqual([{ type: 'next', seq: 1 }]);
    s.receive({ type: 'error', seq: 1, code: 'pow_required', message: 'missing', pow: challenge(2) });
    await solver.finish();
    expect(s.sent[1]).toEqual({ type: 'next', seq: 2, pow: 'sol:c2' });
    expect(messages).toEqual([]);
  });

  it('stops the solve on dispose and ignores a solution that arrives after it', async () => {
    const { client, s, solver } = setup();
    s.receive(welcome({ pow: challenge(1) }));
    client.send({ type: 'join', mode: 'text' });
    expect(solver.pending[0]?.signal.aborted).toBe(false);
    client.dispose();
    expect(solver.pending[0]?.signal.aborted).toBe(true);
    await solver.finish();
    expect(s.sent).toEqual([]);
  });

  it('stops a solve that a fresh challenge replaces', async () => {
    const { client, s, solver } = setup();
    s.receive(welcome({ pow: challenge(1) }));
    await solver.finish();
    client.send({ type: 'join', mode: 'text' });
    s.receive({ type: 'error', seq: 1, code: 'pow_required', message: 'used', pow: challenge(2) });
    s.drop();
    vi.runOnlyPendingTimers();
    const s2 = FakeSocket.last();
    s2.open();
    s2.receive(welcome({ resumed: true, lastSeq: 1, pow: challenge(3) }));
    expect(solver.pending[1]?.signal.aborted).toBe(true);
    expect(solver.pending[2]?.signal.aborted).toBe(false);
    await solver.finish();
    expect(s2.sent).toEqual([{ type: 'join', mode: 'text', seq: 2, pow: 'sol:c3' }]);
  });
});
