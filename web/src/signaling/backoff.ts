export interface BackoffOptions {
  /** Delay ceiling of the first retry, in ms. */
  initialMs: number;
  /** Largest delay ceiling, in ms. */
  maxMs: number;
  /** Growth of the ceiling per attempt. */
  factor: number;
}

export const defaultBackoff: BackoffOptions = { initialMs: 250, maxMs: 10_000, factor: 2 };

/**
 * Delay before reconnect attempt number `attempt` (0 for the first retry):
 * exponential growth capped at maxMs, with "equal jitter" (half fixed, half
 * random) so that thousands of clients dropped by one node restart do not
 * come back in lockstep, while a single client still retries quickly.
 */
export function backoffDelay(attempt: number, random: () => number, o: BackoffOptions = defaultBackoff): number {
  const ceiling = Math.min(o.maxMs, o.initialMs * Math.pow(o.factor, Math.max(0, attempt)));
  const half = ceiling / 2;
  return Math.round(half + random() * half);
}
