/** Options for {@link backoffDelay}. */
export interface BackoffOptions {
  /** Delay of the first attempt. */
  base: number;
  /** Upper bound of any delay. */
  max: number;
  /** Random source in [0, 1) for jitter; tests pass a fixed one. */
  random?: () => number;
}

/**
 * Capped exponential backoff with "equal jitter": for attempt n (1-based) a delay in
 * [d/2, d] where d = min(max, base * 2^(n-1)). Units are whatever `base` and `max` use.
 */
export function backoffDelay(attempt: number, options: BackoffOptions): number {
  const n = Math.max(1, Math.floor(attempt));
  const ceiling = Math.min(options.max, options.base * 2 ** Math.min(n - 1, 30));
  const random = options.random ?? Math.random;
  return ceiling / 2 + (ceiling / 2) * random();
}

/** Resolves after `ms`, or at once when `signal` aborts (never rejects). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
