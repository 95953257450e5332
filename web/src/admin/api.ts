// The operator API (docs/moderation.md, "Operator API"): the only thing the
// console talks to.

export type ReportStatus = 'open' | 'dismissed' | 'actioned';

export interface ReportMessage {
  from: 'reporter' | 'reported';
  text: string;
  at: string;
}

export interface Report {
  id: string;
  at: string;
  reason: string;
  mode: string;
  commonInterests: string[];
  chatSeconds: number;
  reporter: string;
  reported: string;
  messages: ReportMessage[];
  evidence: boolean;
  status: ReportStatus;
}

export interface ReportDetail extends Report {
  /** Distinct identities that reported the same identity within the ban window. */
  reportsAgainst: number;
}

export interface Ban {
  identity: string;
  /** null: permanent. */
  until: string | null;
  reason: string;
  source: 'auto' | 'moderator';
  reports: string[];
  at: string;
}

export interface Stats {
  online: number;
  waiting: number;
  chatting: number;
  matchesLastMinute: number;
  reportsLastHour: number;
  bansActive: number;
}

/** The ban lengths the console offers, as the API's Go durations ("0": permanent). */
export const BAN_DURATIONS = [
  { duration: '24h', label: '24 h', key: '1' },
  { duration: '168h', label: '7 days', key: '7' },
  { duration: '0', label: 'Permanent', key: 'p' },
] as const;

export type BanDuration = (typeof BAN_DURATIONS)[number]['duration'];

/** The API wants a token: the console asks for one. */
export class Unauthorized extends Error {
  constructor() {
    super('unauthorized');
    this.name = 'Unauthorized';
  }
}

/** Any other refusal, with the API's message. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** Where the token lives: this tab's session only, never across restarts of the browser. */
export interface TokenStore {
  get(): string | null;
  set(token: string | null): void;
}

const TOKEN_KEY = 'stranger.adminToken';

export function sessionTokenStore(storage: Pick<Storage, 'getItem' | 'setItem' | 'removeItem'> | null): TokenStore {
  let memory: string | null = null;
  return {
    get() {
      try {
        return storage?.getItem(TOKEN_KEY) ?? memory;
      } catch {
        return memory;
      }
    },
    set(token) {
      memory = token;
      try {
        if (token === null) storage?.removeItem(TOKEN_KEY);
        else storage?.setItem(TOKEN_KEY, token);
      } catch {
        /* storage disabled: kept for this page only */
      }
    },
  };
}

/** Report pages asked for at once. */
export const PAGE_SIZE = 50;

export class AdminApi {
  constructor(
    private readonly fetchFn: typeof fetch,
    readonly tokens: TokenStore,
    private readonly base = '/admin/api',
  ) {}

  private async request(method: string, path: string, body?: unknown): Promise<Response> {
    const headers: Record<string, string> = {};
    const token = this.tokens.get();
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const res = await this.fetchFn(this.base + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
    });
    if (res.status === 401) throw new Unauthorized();
    if (!res.ok) {
      let message = `${res.status} ${res.statusText}`.trim();
      try {
        const e = (await res.json()) as { error?: unknown };
        if (typeof e.error === 'string') message = e.error;
      } catch {
        /* not JSON: keep the status line */
      }
      throw new ApiError(res.status, message);
    }
    return res;
  }

  private async json<T>(method: string, path: string, body?: unknown): Promise<T> {
    return (await (await this.request(method, path, body)).json()) as T;
  }

  /** Open reports, newest first; before: the id of the last report of the page before. */
  async reports(before?: string): Promise<Report[]> {
    const q = new URLSearchParams({ status: 'open', limit: String(PAGE_SIZE) });
    if (before) q.set('before', before);
    return (await this.json<{ reports: Report[] }>('GET', `/reports?${q.toString()}`)).reports;
  }

  report(id: string): Promise<ReportDetail> {
    return this.json('GET', `/reports/${encodeURIComponent(id)}`);
  }

  /** The report's picture, or null when it has none. */
  async evidence(id: string): Promise<Blob | null> {
    try {
      return await (await this.request('GET', `/reports/${encodeURIComponent(id)}/evidence`)).blob();
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) return null;
      throw e;
    }
  }

  async dismiss(id: string): Promise<void> {
    await this.request('POST', `/reports/${encodeURIComponent(id)}/dismiss`);
  }

  ban(report: Pick<Report, 'id' | 'reason'>, duration: BanDuration): Promise<Ban> {
    return this.json('POST', '/bans', { report: report.id, duration, reason: report.reason });
  }

  async bans(): Promise<Ban[]> {
    return (await this.json<{ bans: Ban[] }>('GET', '/bans')).bans;
  }

  async unban(identity: string): Promise<void> {
    await this.request('DELETE', `/bans/${encodeURIComponent(identity)}`);
  }

  stats(): Promise<Stats> {
    return this.json('GET', '/stats');
  }
}

/** Automatic bans first (they wait for a person's review), each group newest first as the API gives them. */
export function bansForReview(bans: readonly Ban[]): Ban[] {
  return [...bans.filter((b) => b.source === 'auto'), ...bans.filter((b) => b.source !== 'auto')];
}
