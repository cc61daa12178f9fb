import type { FastifyPluginAsync } from 'fastify';
import { httpErrors } from './errors.ts';
import { sendProblem } from './problem.ts';

/** A readiness check: resolves (or returns) true/undefined when ready; false or a throw means not ready. */
export type ReadinessCheck = () => boolean | void | Promise<boolean | void>;

/** Options for {@link healthPlugin}. */
export interface HealthPluginOptions {
  /** Named readiness checks (`queue`, `keys`, ...), run concurrently on each GET /readyz. */
  checks?: Record<string, ReadinessCheck>;
  /** A check slower than this counts as failed (default 2000 ms). */
  timeoutMs?: number;
}

type CheckState = 'ok' | 'failed' | 'timeout';

async function runCheck(check: ReadinessCheck, timeoutMs: number): Promise<{ state: CheckState; error?: unknown }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<{ state: CheckState }>((resolve) => {
    timer = setTimeout(() => resolve({ state: 'timeout' }), timeoutMs);
  });
  const run = (async () => {
    try {
      return { state: (await check()) === false ? 'failed' : 'ok' } as { state: CheckState };
    } catch (error) {
      return { state: 'failed' as CheckState, error };
    }
  })();
  try {
    return await Promise.race([run, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

const okSchema = { type: 'object', properties: { status: { type: 'string' } }, required: ['status'] } as const;

/**
 * GET /healthz (the process answers: 200 `{status:'ok'}`) and GET /readyz (every check
 * passes: 200 `{status:'ready', checks}`; otherwise a 503 problem naming the failed checks,
 * with no internals). Both routes are public.
 */
export const healthPlugin: FastifyPluginAsync<HealthPluginOptions> = async (app, options) => {
  const checks = Object.entries(options.checks ?? {});
  const timeoutMs = options.timeoutMs ?? 2000;

  app.get('/healthz', { config: { public: true }, schema: { hide: true, response: { 200: okSchema } }, logLevel: 'warn' }, async () => ({
    status: 'ok',
  }));

  app.get('/readyz', { config: { public: true }, schema: { hide: true }, logLevel: 'warn' }, async (request, reply) => {
    const results = await Promise.all(checks.map(async ([name, check]) => ({ name, ...(await runCheck(check, timeoutMs)) })));
    const states = Object.fromEntries(results.map((r) => [r.name, r.state]));
    const failed = results.filter((r) => r.state !== 'ok');
    if (failed.length === 0) return { status: 'ready', checks: states };
    for (const f of failed) {
      const err = f.error as { code?: unknown; name?: unknown } | undefined;
      request.log.warn({ check: f.name, state: f.state, errorCode: err?.code, errorName: err?.name }, 'readiness check failed');
    }
    return sendProblem(reply, httpErrors.notReady(states));
  });
};
