import { act, cleanup, fireEvent, render, screen, waitFor, within } from '@testing-library/react';
import axe from 'axe-core';
import { StrictMode } from 'react';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { AdminApi, PAGE_SIZE, sessionTokenStore, type Ban, type Report, type ReportDetail } from './api';
import { Console } from './Console';

(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;

function report(id: string, o: Partial<Report> = {}): Report {
  return {
    id,
    at: '2026-12-07T04:00:00Z',
    reason: 'harassment',
    mode: 'video',
    commonInterests: ['music'],
    chatSeconds: 65,
    reporter: `rep-${id}`,
    reported: `bad-${id}`,
    messages: [
      { from: 'reported', text: 'hey you', at: '2026-12-07T03:59:00Z' },
      { from: 'reporter', text: 'stop it', at: '2026-12-07T03:59:30Z' },
    ],
    evidence: true,
    status: 'open',
    ...o,
  };
}

interface Call {
  method: string;
  path: string;
  auth: string | null;
  body: unknown;
}

/** The operator API played in memory, answering as the contract says. */
function fakeServer(o: { token?: string; reports?: Report[]; bans?: Ban[] } = {}) {
  const s = {
    reports: o.reports ?? [report('r3'), report('r2', { reason: 'spam', mode: 'text', evidence: false }), report('r1')],
    bans: o.bans ?? ([] as Ban[]),
    stats: { online: 12, waiting: 3, chatting: 8, matchesLastMinute: 5, reportsLastHour: 2, bansActive: 1 },
    calls: [] as Call[],
  };
  const json = (status: number, body: unknown) =>
    new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
  const fetchFn = vi.fn(async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const url = new URL(typeof input === 'string' ? input : input instanceof URL ? input.href : input.url, 'http://node.test');
    const method = init?.method ?? 'GET';
    const auth = new Headers(init?.headers).get('Authorization');
    const body: unknown = typeof init?.body === 'string' ? JSON.parse(init.body) : undefined;
    s.calls.push({ method, path: url.pathname + url.search, auth, body });
    if (o.token !== undefined && auth !== `Bearer ${o.token}`) return json(401, { error: 'unauthorized' });
    const p = url.pathname.replace(/^\/admin\/api/, '');
    let m: RegExpMatchArray | null;
    if (method === 'GET' && p === '/reports') {
      const before = url.searchParams.get('before');
      const limit = Number(url.searchParams.get('limit') ?? 50);
      const open = s.reports.filter((r) => r.status === 'open');
      const from = before ? open.findIndex((r) => r.id === before) + 1 : 0;
      return json(200, { reports: open.slice(from, from + limit) });
    }
    if (method === 'GET' && (m = p.match(/^\/reports\/([^/]+)$/))) {
      const r = s.reports.find((x) => x.id === m![1]);
      if (!r) return json(404, { error: 'no such report' });
      const d: ReportDetail = { ...r, reportsAgainst: r.id === 'r3' ? 3 : 1 };
      return json(200, d);
    }
    if (method === 'GET' && (m = p.match(/^\/reports\/([^/]+)\/evidence$/))) {
      const r = s.reports.find((x) => x.id === m![1]);
      if (!r?.evidence) return json(404, { error: 'no evidence' });
      return new Response(new Blob([`jpeg of ${r.id}`], { type: 'image/jpeg' }), { status: 200 });
    }
    if (method === 'POST' && (m = p.match(/^\/reports\/([^/]+)\/dismiss$/))) {
      const r = s.reports.find((x) => x.id === m![1]);
      if (r) r.status = 'dismissed';
      return new Response(null, { status: 204 });
    }
    if (method === 'POST' && p === '/bans') {
      const b = body as { report: string; duration: string; reason: string };
      const r = s.reports.find((x) => x.id === b.report);
      if (!r) return json(400, { error: 'no such report' });
      r.status = 'actioned';
      const ban: Ban = {
        identity: r.reported,
        until: b.duration === '0' ? null : '2026-12-08T04:00:00Z',
        reason: b.reason,
        source: 'moderator',
        reports: [r.id],
        at: '2026-12-07T04:05:00Z',
      };
      s.bans = [ban, ...s.bans];
      return json(201, ban);
    }
    if (method === 'GET' && p === '/bans') return json(200, { bans: s.bans });
    if (method === 'DELETE' && (m = p.match(/^\/bans\/([^/]+)$/))) {
      s.bans = s.bans.filter((b) => b.identity !== decodeURIComponent(m![1]!));
      return new Response(null, { status: 204 });
    }
    if (method === 'GET' && p === '/stats') return json(200, s.stats);
    return json(404, { error: 'not found' });
  });
  return { s, fetchFn };
}

function memoryStorage() {
  const m = new Map<string, string>();
  return {
    getItem: (k: string) => m.get(k) ?? null,
    setItem: (k: string, v: string) => void m.set(k, v),
    removeItem: (k: string) => void m.delete(k),
    map: m,
  };
}

let created: string[];
let revoked: string[];

beforeEach(() => {
  created = [];
  revoked = [];
  let n = 0;
  // jsdom has no object URLs.
  URL.createObjectURL = vi.fn(() => {
    const u = `blob:test/${++n}`;
    created.push(u);
    return u;
  });
  URL.revokeObjectURL = vi.fn((u: string) => void revoked.push(u));
});

afterEach(cleanup);

async function mount(server: ReturnType<typeof fakeServer>, storage = memoryStorage(), pollMs = 60_000) {
  const api = new AdminApi(server.fetchFn, sessionTokenStore(storage));
  let r: ReturnType<typeof render> | undefined;
  await act(async () => {
    r = render(
      <StrictMode>
        <Console api={api} pollMs={pollMs} />
      </StrictMode>,
    );
  });
  return { ...r!, storage };
}

const key = (k: string, target: Window | Element = window) =>
  act(async () => {
    fireEvent.keyDown(target, { key: k });
    await Promise.resolve();
  });
const selected = () => screen.getByTestId('report-detail').getAttribute('data-report');
const calls = (server: ReturnType<typeof fakeServer>, method: string, prefix: string) =>
  server.s.calls.filter((c) => c.method === method && c.path.startsWith(prefix));

describe('Console', () => {
  it('shows the queue newest first and the selected report with everything it holds', async () => {
    const server = fakeServer();
    await mount(server);
    await screen.findByTestId('queue');
    expect(calls(server, 'GET', '/admin/api/reports?')[0]?.path).toBe(`/admin/api/reports?status=open&limit=${PAGE_SIZE}`);
    const items = within(screen.getByTestId('queue')).getAllByRole('button');
    expect(items.map((b) => b.getAttribute('data-testid'))).toEqual(['queue-r3', 'queue-r2', 'queue-r1']);
    expect(selected()).toBe('r3');
    expect(screen.getByTestId('queue-r3').getAttribute('aria-current')).toBe('true');

    await screen.findByText('3 distinct people reported this identity.');
    const detail = screen.getByTestId('report-detail');
    expect(detail.textContent).toContain('harassment');
    expect(detail.textContent).toContain('1 min 5 s');
    expect(detail.textContent).toContain('music');
    expect(detail.textContent).toContain('bad-r3');
    const lines = within(screen.getByTestId('transcript')).getAllByRole('listitem');
    expect(lines.map((l) => l.textContent)).toEqual(['Reported: hey you', 'Reporter: stop it']);
    const img = await screen.findByTestId<HTMLImageElement>('evidence');
    expect(img.getAttribute('src')).toBe(created.at(-1));
    expect(img.alt).not.toBe('');

    expect(screen.getByTestId('stat-online').textContent).toBe('12');
    expect(screen.getByTestId('stat-matchesLastMinute').textContent).toBe('5');
    expect(screen.getByTestId('stat-reportsLastHour').textContent).toBe('2');
    expect(screen.getByTestId('stat-bansActive').textContent).toBe('1');
  });

  it('j and k move through the queue; keys do nothing while typing in an input', async () => {
    const server = fakeServer();
    await mount(server);
    await screen.findByTestId('queue');
    await key('j');
    expect(selected()).toBe('r2');
    // r2 has no picture: none is fetched.
    expect(screen.getByTestId('report-detail').textContent).toContain('No picture was sent');
    await key('j');
    await key('j'); // stays on the last
    expect(selected()).toBe('r1');
    await key('k');
    expect(selected()).toBe('r2');

    const input = document.createElement('input');
    document.body.append(input);
    input.focus();
    await key('j', input);
    await key('d', input);
    expect(selected()).toBe('r2');
    expect(calls(server, 'POST', '/admin/api/reports/')).toEqual([]);
    input.remove();
  });

  it('b bans the reported identity for 24 h with the report and its reason; the next report is selected', async () => {
    const server = fakeServer();
    await mount(server);
    await screen.findByTestId('queue');
    await key('j'); // r2, reason spam
    await key('b');
    await waitFor(() => expect(calls(server, 'POST', '/admin/api/bans')).toHaveLength(1));
    expect(calls(server, 'POST', '/admin/api/bans')[0]?.body).toEqual({ report: 'r2', duration: '24h', reason: 'spam' });
    await waitFor(() => expect(selected()).toBe('r1'));
    expect(screen.queryByTestId('queue-r2')).toBeNull();
    expect(screen.getByTestId('console-notice').textContent).toBe('Banned bad-r2 for 24 h.');
    // The bans list is fetched again and shows the new ban.
    await screen.findByTestId('ban-row-bad-r2');
  });

  it('the buttons ban for 7 days and permanently', async () => {
    const server = fakeServer();
    await mount(server);
    await screen.findByTestId('queue');
    fireEvent.click(screen.getByTestId('ban-168h'));
    await waitFor(() => expect(selected()).toBe('r2'));
    fireEvent.click(screen.getByTestId('ban-0'));
    await waitFor(() => expect(selected()).toBe('r1'));
    expect(calls(server, 'POST', '/admin/api/bans').map((c) => c.body)).toEqual([
      { report: 'r3', duration: '168h', reason: 'harassment' },
      { report: 'r2', duration: '0', reason: 'spam' },
    ]);
    expect(screen.getByTestId('console-notice').textContent).toBe('Banned bad-r2 permanently.');
  });

  it('d dismisses the report', async () => {
    const server = fakeServer();
    await mount(server);
    await screen.findByTestId('queue');
    await key('d');
    await waitFor(() => expect(selected()).toBe('r2'));
    expect(calls(server, 'POST', '/admin/api/reports/').map((c) => c.path)).toEqual(['/admin/api/reports/r3/dismiss']);
    expect(calls(server, 'POST', '/admin/api/bans')).toEqual([]);
    expect(screen.getByTestId('console-notice').textContent).toBe('Report dismissed.');
  });

  it('lists automatic bans first, marked for review, and unbans', async () => {
    const ban = (identity: string, source: Ban['source']): Ban => ({
      identity,
      until: null,
      reason: 'nudity',
      source,
      reports: ['x'],
      at: '2026-12-07T04:00:00Z',
    });
    const server = fakeServer({ bans: [ban('mod1', 'moderator'), ban('auto1', 'auto'), ban('mod2', 'moderator')] });
    await mount(server);
    const list = await screen.findByTestId('bans');
    const rows = within(list).getAllByRole('listitem');
    expect(rows.map((r) => r.getAttribute('data-testid'))).toEqual(['ban-row-auto1', 'ban-row-mod1', 'ban-row-mod2']);
    expect(rows[0]?.textContent).toContain('Automatic: review');
    expect(rows[1]?.textContent).not.toContain('review');
    fireEvent.click(screen.getByRole('button', { name: 'Unban auto1' }));
    await waitFor(() => expect(screen.queryByTestId('ban-row-auto1')).toBeNull());
    expect(calls(server, 'DELETE', '/admin/api/bans/').map((c) => c.path)).toEqual(['/admin/api/bans/auto1']);
  });

  it('asks for the token on 401, keeps it for the session and retries with Bearer', async () => {
    const server = fakeServer({ token: 's3cret' });
    const { storage } = await mount(server);
    // Tried without a token first.
    expect(server.s.calls[0]?.auth).toBeNull();
    const input = await screen.findByTestId('token-input');
    expect(screen.queryByRole('alert')).toBeNull(); // no token was refused yet
    fireEvent.change(input, { target: { value: 'wrong' } });
    await act(async () => void fireEvent.click(screen.getByTestId('token-submit')));
    await screen.findByText('That token was not accepted.');
    fireEvent.change(screen.getByTestId('token-input'), { target: { value: 's3cret' } });
    await act(async () => void fireEvent.click(screen.getByTestId('token-submit')));
    await screen.findByTestId('queue');
    expect(storage.map.get('stranger.adminToken')).toBe('s3cret');
    const last = server.s.calls.at(-1);
    expect(last?.auth).toBe('Bearer s3cret');
    // The picture is fetched with the token too.
    await screen.findByTestId('evidence');
    expect(calls(server, 'GET', '/admin/api/reports/r3/evidence').every((c) => c.auth === 'Bearer s3cret')).toBe(true);
  });

  it('a token kept in the session is used from the first request', async () => {
    const server = fakeServer({ token: 'kept' });
    const storage = memoryStorage();
    storage.setItem('stranger.adminToken', 'kept');
    await mount(server, storage);
    await screen.findByTestId('queue');
    expect(server.s.calls[0]?.auth).toBe('Bearer kept');
  });

  it('revokes the picture URL when another report is shown and on unmount', async () => {
    const server = fakeServer();
    const { unmount } = await mount(server);
    await screen.findByTestId('evidence');
    const first = screen.getByTestId('evidence').getAttribute('src')!;
    await key('j');
    await key('j'); // r1, with a picture
    await waitFor(() => expect(screen.getByTestId('evidence').getAttribute('src')).not.toBe(first));
    expect(revoked).toContain(first);
    const second = screen.getByTestId('evidence').getAttribute('src')!;
    unmount();
    expect(revoked).toContain(second);
    // Every URL made was given back (StrictMode's extra mount included).
    expect(new Set(revoked)).toEqual(new Set(created));
  });

  it('pages with before and polls the figures', { timeout: 20_000 }, async () => {
    const many = Array.from({ length: PAGE_SIZE + 2 }, (_, i) => report(`p${PAGE_SIZE + 2 - i}`, { evidence: false }));
    const server = fakeServer({ reports: many });
    await mount(server, memoryStorage(), 40);
    await screen.findByTestId('queue');
    expect(within(screen.getByTestId('queue')).getAllByRole('listitem')).toHaveLength(PAGE_SIZE);
    fireEvent.click(screen.getByTestId('load-older'));
    await waitFor(() => expect(within(screen.getByTestId('queue')).getAllByRole('listitem')).toHaveLength(PAGE_SIZE + 2));
    expect(calls(server, 'GET', '/admin/api/reports?').some((c) => c.path.includes('before=p3'))).toBe(true);
    expect(screen.queryByTestId('load-older')).toBeNull();

    server.s.stats = { ...server.s.stats, online: 40 };
    await waitFor(() => expect(screen.getByTestId('stat-online').textContent).toBe('40'));
  });

  it('polling drops reports another moderator handled and shows new ones', { timeout: 20_000 }, async () => {
    const server = fakeServer({ reports: [report('r2', { evidence: false }), report('r1', { evidence: false })] });
    await mount(server, memoryStorage(), 40);
    await waitFor(() => expect(within(screen.getByTestId('queue')).getAllByRole('listitem')).toHaveLength(2));
    server.s.reports[0]!.status = 'dismissed'; // r2, dismissed elsewhere
    server.s.reports.unshift(report('r3', { evidence: false }));
    await screen.findByTestId('queue-r3');
    expect(within(screen.getByTestId('queue')).getAllByRole('listitem')).toHaveLength(2);
    expect(screen.queryByTestId('queue-r2')).toBeNull();
    expect(screen.getByTestId('queue-r3')).toBeTruthy();
    expect(screen.getByTestId('queue-r1')).toBeTruthy();
  });

  it('passes axe', async () => {
    const server = fakeServer();
    const { container } = await mount(server);
    await screen.findByTestId('evidence');
    const res = await axe.run(container, { rules: { 'color-contrast': { enabled: false } } });
    expect(res.violations.map((v) => `${v.id}: ${v.nodes.map((n) => n.html).join(' ')}`)).toEqual([]);
  });
});
