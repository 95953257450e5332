import { useCallback, useEffect, useId, useRef, useState, type FormEvent } from 'react';
import {
  AdminApi,
  BAN_DURATIONS,
  bansForReview,
  PAGE_SIZE,
  Unauthorized,
  type Ban,
  type BanDuration,
  type Report,
  type ReportDetail,
  type Stats,
} from './api';

/** How often the figures (and the first page of the queue) are fetched again. */
export const POLL_MS = 5000;

/**
 * checking: the first requests are out. ok: the API answers. token: it said
 * 401; `rejected` when the token we sent was the one refused.
 */
type Auth = { kind: 'checking' } | { kind: 'ok' } | { kind: 'token'; rejected: boolean };

interface Queue {
  reports: Report[];
  /** A full page came back last time: there may be older ones. */
  more: boolean;
}

/** What the last action said: a result (status) or a failure (alert). */
type Notice = { kind: 'done' | 'failed'; text: string } | null;

const durationLabel = (d: BanDuration): string => BAN_DURATIONS.find((b) => b.duration === d)?.label ?? d;

/**
 * A fresh first page of the queue replaces what it covers: new reports
 * appear on top, and reports another moderator dismissed or acted on leave
 * the queue. Older pages loaded with "Load older" stay below it. A page
 * that is not full holds every open report.
 */
function mergeNewest(current: Report[], page: Report[], full: boolean): Report[] {
  const last = page[page.length - 1];
  if (!full || !last) return page;
  const inPage = new Set(page.map((r) => r.id));
  const cut = current.findIndex((r) => r.id === last.id);
  const older = cut >= 0 ? current.slice(cut + 1) : current.filter((r) => r.at < last.at);
  return [...page, ...older.filter((r) => !inPage.has(r.id))];
}

function isTyping(target: EventTarget | null): boolean {
  if (!(target instanceof HTMLElement)) return false;
  return target.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(target.tagName);
}

function formatTime(at: string): string {
  const d = new Date(at);
  return Number.isNaN(d.getTime()) ? at : d.toLocaleString();
}

export function formatSeconds(s: number): string {
  const n = Math.max(0, Math.round(s));
  if (n < 60) return `${n} s`;
  const m = Math.floor(n / 60);
  return n % 60 ? `${m} min ${n % 60} s` : `${m} min`;
}

/**
 * The operator console: the open reports with what each one holds, one-click
 * bans and dismissal, the active bans (automatic ones first, for review) and
 * the deployment's live figures. It uses only the operator API.
 */
export function Console({ api, pollMs = POLL_MS }: { api: AdminApi; pollMs?: number }) {
  const [auth, setAuth] = useState<Auth>({ kind: 'checking' });
  // Bumped when a token is entered: every request is made again with it.
  const [generation, setGeneration] = useState(0);
  const [queue, setQueue] = useState<Queue>({ reports: [], more: false });
  const [chosenId, setSelectedId] = useState<string | null>(null);
  const [bans, setBans] = useState<Ban[]>([]);
  const [stats, setStats] = useState<Stats | null>(null);
  const [notice, setNotice] = useState<Notice>(null);
  const [busy, setBusy] = useState(false);

  /** What every failed request does: ask for a token on 401, else say what failed. */
  const failed = useCallback(
    (e: unknown) => {
      if (e instanceof Unauthorized) {
        setAuth({ kind: 'token', rejected: api.tokens.get() !== null });
        return;
      }
      setNotice({ kind: 'failed', text: e instanceof Error ? e.message : String(e) });
    },
    [api],
  );

  const loadBans = useCallback(() => api.bans().then(setBans, failed), [api, failed]);

  // The first load (and again after a token was entered), then the polling.
  useEffect(() => {
    let live = true;
    const guard =
      <T,>(fn: (v: T) => void) =>
      (v: T) => {
        if (live) fn(v);
      };
    const fail = guard(failed);
    api.reports().then(
      guard((page: Report[]) => {
        setAuth({ kind: 'ok' });
        setQueue({ reports: page, more: page.length === PAGE_SIZE });
        setSelectedId((id) => id ?? page[0]?.id ?? null);
      }),
      fail,
    );
    api.bans().then(guard(setBans), fail);
    api.stats().then(guard(setStats), fail);
    const timer = setInterval(() => {
      api.stats().then(guard(setStats), fail);
      api.reports().then(
        guard((page: Report[]) => {
          setQueue((q) => ({ ...q, reports: mergeNewest(q.reports, page, page.length === PAGE_SIZE) }));
        }),
        fail,
      );
    }, pollMs);
    return () => {
      live = false;
      clearInterval(timer);
    };
  }, [api, failed, generation, pollMs]);

  // The report the moderator chose, while it is in the queue; once it left
  // (another moderator handled it), or before any choice, the newest.
  const selectedId =
    chosenId !== null && queue.reports.some((r) => r.id === chosenId) ? chosenId : (queue.reports[0]?.id ?? null);
  const selectedIndex = queue.reports.findIndex((r) => r.id === selectedId);
  const selected = selectedIndex >= 0 ? queue.reports[selectedIndex] : undefined;

  const move = useCallback(
    (by: number) => {
      const { reports } = queue;
      if (reports.length === 0) return;
      const i = reports.findIndex((r) => r.id === selectedId);
      const next = Math.min(reports.length - 1, Math.max(0, i + by));
      setSelectedId(reports[next]?.id ?? null);
    },
    [queue, selectedId],
  );

  /** The report is done with: out of the queue, the one after it selected. */
  const removeFromQueue = useCallback(
    (id: string) => {
      const i = queue.reports.findIndex((r) => r.id === id);
      const rest = queue.reports.filter((r) => r.id !== id);
      setQueue((q) => ({ ...q, reports: q.reports.filter((r) => r.id !== id) }));
      setSelectedId((cur) => (cur === id ? (rest[Math.min(i, rest.length - 1)]?.id ?? null) : cur));
    },
    [queue.reports],
  );

  const ban = useCallback(
    async (duration: BanDuration) => {
      if (!selected || busy) return;
      setBusy(true);
      try {
        const b = await api.ban(selected, duration);
        removeFromQueue(selected.id);
        setNotice({
          kind: 'done',
          text: `Banned ${b.identity} ${b.until === null ? 'permanently' : `for ${durationLabel(duration)}`}.`,
        });
        await loadBans();
      } catch (e) {
        failed(e);
      } finally {
        setBusy(false);
      }
    },
    [api, busy, failed, loadBans, removeFromQueue, selected],
  );

  const dismiss = useCallback(async () => {
    if (!selected || busy) return;
    setBusy(true);
    try {
      await api.dismiss(selected.id);
      removeFromQueue(selected.id);
      setNotice({ kind: 'done', text: 'Report dismissed.' });
    } catch (e) {
      failed(e);
    } finally {
      setBusy(false);
    }
  }, [api, busy, failed, removeFromQueue, selected]);

  const unban = useCallback(
    async (identity: string) => {
      try {
        await api.unban(identity);
        setNotice({ kind: 'done', text: `Unbanned ${identity}.` });
        await loadBans();
      } catch (e) {
        failed(e);
      }
    },
    [api, failed, loadBans],
  );

  const loadOlder = useCallback(async () => {
    const last = queue.reports.at(-1);
    try {
      const page = await api.reports(last?.id);
      setQueue((q) => {
        const known = new Set(q.reports.map((r) => r.id));
        return { reports: [...q.reports, ...page.filter((r) => !known.has(r.id))], more: page.length === PAGE_SIZE };
      });
    } catch (e) {
      failed(e);
    }
  }, [api, failed, queue.reports]);

  // j/k move, b bans for 24 h, d dismisses; never while typing.
  useEffect(() => {
    if (auth.kind !== 'ok') return;
    const onKey = (e: KeyboardEvent) => {
      if (e.ctrlKey || e.metaKey || e.altKey || e.repeat || isTyping(e.target)) return;
      const act: Record<string, () => void> = {
        j: () => move(1),
        k: () => move(-1),
        b: () => void ban('24h'),
        d: () => void dismiss(),
      };
      const fn = act[e.key];
      if (!fn) return;
      e.preventDefault();
      fn();
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [auth.kind, ban, dismiss, move]);

  const submitToken = useCallback(
    (token: string) => {
      api.tokens.set(token);
      setNotice(null);
      setAuth({ kind: 'checking' });
      setGeneration((g) => g + 1);
    },
    [api],
  );

  if (auth.kind === 'token') return <TokenPrompt rejected={auth.rejected} onSubmit={submitToken} />;

  return (
    <div className="console">
      <header className="console-top">
        <h1>Stranger moderation</h1>
        <StatsBar stats={stats} />
      </header>
      <div
        className={`console-notice ${notice ? `console-notice-${notice.kind}` : ''}`}
        role={notice?.kind === 'failed' ? 'alert' : 'status'}
        data-testid="console-notice"
      >
        {notice?.text}
      </div>
      <main className="console-main">
        <section className="queue" aria-labelledby="queue-title">
          <h2 id="queue-title">
            Open reports <span className="count">{queue.reports.length}</span>
          </h2>
          {auth.kind === 'checking' ? (
            <p className="muted">Loading…</p>
          ) : queue.reports.length === 0 ? (
            <p className="muted" data-testid="queue-empty">
              No open reports.
            </p>
          ) : (
            <ol className="queue-list" data-testid="queue">
              {queue.reports.map((r) => (
                <li key={r.id}>
                  <button
                    type="button"
                    className="queue-item"
                    aria-current={r.id === selectedId ? 'true' : undefined}
                    data-testid={`queue-${r.id}`}
                    onClick={() => setSelectedId(r.id)}
                  >
                    <span className="queue-reason">{r.reason || 'no reason'}</span>
                    <span className="queue-meta">
                      {r.mode} · {formatTime(r.at)}
                      {r.evidence ? ' · picture' : ''}
                    </span>
                  </button>
                </li>
              ))}
            </ol>
          )}
          {queue.more && (
            <button type="button" className="btn btn-secondary" data-testid="load-older" onClick={() => void loadOlder()}>
              Load older reports
            </button>
          )}
        </section>

        <section className="detail" aria-labelledby="detail-title">
          {selected ? (
            <ReportView
              key={selected.id}
              api={api}
              report={selected}
              busy={busy}
              onBan={(d) => void ban(d)}
              onDismiss={() => void dismiss()}
              onError={failed}
            />
          ) : (
            <h2 id="detail-title" className="muted">
              Nothing selected
            </h2>
          )}
        </section>

        <BansList bans={bans} onUnban={(id) => void unban(id)} />
      </main>
      <footer className="console-hint" aria-label="Keyboard shortcuts">
        <kbd>j</kbd>/<kbd>k</kbd> next/previous report · <kbd>b</kbd> ban 24 h · <kbd>d</kbd> dismiss
      </footer>
    </div>
  );
}

function StatsBar({ stats }: { stats: Stats | null }) {
  const figures: [string, keyof Stats][] = [
    ['Online', 'online'],
    ['Waiting', 'waiting'],
    ['Chatting', 'chatting'],
    ['Matches / min', 'matchesLastMinute'],
    ['Reports / hour', 'reportsLastHour'],
    ['Active bans', 'bansActive'],
  ];
  return (
    <dl className="stats" data-testid="stats">
      {figures.map(([label, key]) => (
        <div key={key} className="stat">
          <dt>{label}</dt>
          <dd data-testid={`stat-${key}`}>{stats ? stats[key] : '–'}</dd>
        </div>
      ))}
    </dl>
  );
}

interface ReportViewProps {
  api: AdminApi;
  report: Report;
  busy: boolean;
  onBan: (d: BanDuration) => void;
  onDismiss: () => void;
  onError: (e: unknown) => void;
}

/**
 * One report: its facts, the chat lines, the picture, how many reported the
 * same person, and the actions. Keyed by the report's id, so a new report
 * starts with nothing of the last one.
 */
function ReportView({ api, report, busy, onBan, onDismiss, onError }: ReportViewProps) {
  const [detail, setDetail] = useState<ReportDetail | null>(null);
  const [picture, setPicture] = useState<string | null>(null);
  const id = report.id;

  useEffect(() => {
    let live = true;
    let url: string | null = null;
    api.report(id).then((d) => {
      if (live) setDetail(d);
    }, (e: unknown) => live && onError(e));
    if (report.evidence) {
      api.evidence(id).then(
        (blob) => {
          if (!live || !blob) return;
          url = URL.createObjectURL(blob);
          setPicture(url);
        },
        (e: unknown) => live && onError(e),
      );
    }
    // The picture's object URL lives as long as this report is shown.
    return () => {
      live = false;
      if (url) URL.revokeObjectURL(url);
    };
  }, [api, id, report.evidence, onError]);

  const r = detail ?? report;
  return (
    <article className="report" data-testid="report-detail" data-report={id}>
      <h2 id="detail-title">
        Report: <span className="reason">{r.reason || 'no reason'}</span>
      </h2>
      <p className="against" data-testid="reports-against">
        {detail === null
          ? ' '
          : detail.reportsAgainst === 1
            ? '1 distinct person reported this identity.'
            : `${detail.reportsAgainst} distinct people reported this identity.`}
      </p>
      <dl className="facts">
        <dt>Time</dt>
        <dd>{formatTime(r.at)}</dd>
        <dt>Mode</dt>
        <dd>{r.mode}</dd>
        <dt>Chat lasted</dt>
        <dd>{formatSeconds(r.chatSeconds)}</dd>
        <dt>Common interests</dt>
        <dd>{r.commonInterests.length ? r.commonInterests.join(', ') : 'none'}</dd>
        <dt>Reported identity</dt>
        <dd>
          <code>{r.reported}</code>
        </dd>
        <dt>Reporter identity</dt>
        <dd>
          <code>{r.reporter}</code>
        </dd>
      </dl>
      <div className="actions" role="group" aria-label="Act on this report">
        {BAN_DURATIONS.map((b) => (
          <button
            key={b.duration}
            type="button"
            className="btn btn-primary btn-ban"
            disabled={busy}
            data-testid={`ban-${b.duration}`}
            onClick={() => onBan(b.duration)}
          >
            {b.duration === '0' ? 'Ban permanently' : `Ban ${b.label}`}
            {b.duration === '24h' && <kbd aria-hidden="true">b</kbd>}
          </button>
        ))}
        <button type="button" className="btn btn-secondary" disabled={busy} data-testid="dismiss" onClick={onDismiss}>
          Dismiss <kbd aria-hidden="true">d</kbd>
        </button>
      </div>
      <div className="evidence">
        <h3>Picture</h3>
        {!r.evidence ? (
          <p className="muted">No picture was sent with this report.</p>
        ) : picture ? (
          <img src={picture} alt="What the reporter saw when they reported" data-testid="evidence" />
        ) : (
          <p className="muted">Loading the picture…</p>
        )}
      </div>
      <div className="transcript">
        <h3>Last messages</h3>
        {r.messages.length === 0 ? (
          <p className="muted">No messages.</p>
        ) : (
          <ol data-testid="transcript">
            {r.messages.map((m, i) => (
              <li key={i} className={`line line-${m.from}`}>
                <span className="who">{m.from === 'reporter' ? 'Reporter' : 'Reported'}:</span> {m.text}
              </li>
            ))}
          </ol>
        )}
      </div>
    </article>
  );
}

function BansList({ bans, onUnban }: { bans: Ban[]; onUnban: (identity: string) => void }) {
  const ordered = bansForReview(bans);
  return (
    <section className="bans" aria-labelledby="bans-title">
      <h2 id="bans-title">
        Active bans <span className="count">{bans.length}</span>
      </h2>
      {ordered.length === 0 ? (
        <p className="muted">No active bans.</p>
      ) : (
        <ul className="ban-list" data-testid="bans">
          {ordered.map((b) => (
            <li key={b.identity} className={`ban ban-${b.source}`} data-testid={`ban-row-${b.identity}`}>
              <div className="ban-head">
                <code>{b.identity}</code>
                {b.source === 'auto' ? (
                  <span className="badge badge-review">Automatic: review</span>
                ) : (
                  <span className="badge">Moderator</span>
                )}
              </div>
              <div className="ban-meta">
                {b.reason || 'no reason'} · {b.until === null ? 'permanent' : `until ${formatTime(b.until)}`} ·{' '}
                {b.reports.length} {b.reports.length === 1 ? 'report' : 'reports'}
              </div>
              <button
                type="button"
                className="btn btn-secondary btn-small"
                aria-label={`Unban ${b.identity}`}
                onClick={() => onUnban(b.identity)}
              >
                Unban
              </button>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

function TokenPrompt({ rejected, onSubmit }: { rejected: boolean; onSubmit: (token: string) => void }) {
  const inputId = useId();
  const [token, setToken] = useState('');
  const ref = useRef<HTMLInputElement>(null);
  useEffect(() => ref.current?.focus(), []);
  const submit = (e: FormEvent) => {
    e.preventDefault();
    const t = token.trim();
    if (t) onSubmit(t);
  };
  return (
    <main className="console-login">
      <form className="landing-card" onSubmit={submit} aria-labelledby="login-title">
        <h1 id="login-title">Stranger moderation</h1>
        <p>This console needs the operator token (the server's --admin-token).</p>
        {rejected && (
          <p className="login-error" role="alert">
            That token was not accepted.
          </p>
        )}
        <label htmlFor={inputId} className="field-label">
          Operator token
        </label>
        <input
          id={inputId}
          ref={ref}
          className="token-input"
          type="password"
          autoComplete="off"
          value={token}
          onChange={(e) => setToken(e.target.value)}
          data-testid="token-input"
        />
        <button type="submit" className="btn btn-primary" data-testid="token-submit" disabled={token.trim() === ''}>
          Open the console
        </button>
      </form>
    </main>
  );
}
