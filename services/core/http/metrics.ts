import type { FastifyInstance, FastifyPluginAsync, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { Counter, Histogram, type Registry } from 'prom-client';

/** Options for {@link metricsPlugin}. */
export interface MetricsPluginOptions {
  /** Registry to expose and to register the HTTP metrics on (the service's own, never the global one). */
  registry: Registry;
  /** Metric name prefix (default `care_relay_`). */
  prefix?: string;
  /** Role required to read /metrics; public when omitted (scrapers on the internal network). */
  role?: string;
}

const started = Symbol('care-relay.metrics.started');
type Timed = FastifyRequest & { [started]?: bigint };

function getOrCreate<T>(registry: Registry, name: string, create: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? create();
}

/**
 * GET /metrics in Prometheus text format from the injected registry, plus
 * `<prefix>http_requests_total` and `<prefix>http_request_duration_seconds`, labelled by
 * method, route pattern (`unmatched` for 404s, so URLs never become labels) and status.
 */
export const metricsPlugin: FastifyPluginAsync<MetricsPluginOptions> = fp(
  async (app: FastifyInstance, options: MetricsPluginOptions) => {
    const { registry } = options;
    const prefix = options.prefix ?? 'care_relay_';
    const labelNames = ['method', 'route', 'status'] as const;
    const requests = getOrCreate(
      registry,
      `${prefix}http_requests_total`,
      () => new Counter({ name: `${prefix}http_requests_total`, help: 'HTTP requests answered, by route and status', labelNames, registers: [registry] }),
    );
    const duration = getOrCreate(
      registry,
      `${prefix}http_request_duration_seconds`,
      () =>
        new Histogram({
          name: `${prefix}http_request_duration_seconds`,
          help: 'HTTP request duration in seconds, by route and status',
          labelNames,
          buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
          registers: [registry],
        }),
    );

    app.addHook('onRequest', async (request) => {
      (request as Timed)[started] = process.hrtime.bigint();
    });
    app.addHook('onResponse', async (request, reply) => {
      const start = (request as Timed)[started];
      const labels = { method: request.method, route: request.routeOptions.url ?? 'unmatched', status: String(reply.statusCode) };
      requests.inc(labels);
      if (start !== undefined) duration.observe(labels, Number(process.hrtime.bigint() - start) / 1e9);
    });

    const config: { public?: boolean; role?: string } = options.role === undefined ? { public: true } : { role: options.role };
    app.get('/metrics', { config, schema: { hide: true }, logLevel: 'warn' }, async (_request, reply) => {
      const body = await registry.metrics();
      return reply.type(registry.contentType).send(body);
    });
  },
  { name: 'care-relay-metrics', fastify: '5.x' },
);
