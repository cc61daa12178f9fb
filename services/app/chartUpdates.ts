import type { FastifyPluginAsync } from 'fastify';
import { httpErrors } from '../core/http/errors.ts';
import { ACCEPTED_MEDIA_TYPES, checkPayload, formatFor } from '../core/relay/contentTypes.ts';
import type { Idempotency } from '../core/relay/idempotency.ts';
import { ORDERING_KEY_HEADER, orderingBucket } from '../core/relay/ordering.ts';
import type { Outbound } from '../core/relay/outbound.ts';
import type { EmergencySwitch } from '../core/runtime/emergency.ts';

/** Options for {@link chartUpdateRoutes}. */
export interface ChartUpdateOptions {
  /** Seals and sends to `app-to-interface`. */
  outbound: Outbound;
  /** Idempotency-Key memory. */
  idempotency: Idempotency;
  /** Emergency switch: refused while on. */
  emergency: EmergencySwitch;
  /** Largest body read, bytes. */
  bodyLimit: number;
  /** The service's keyed hash (HMAC_KEY): turns an Ordering-Key into an ordering bucket. */
  hash: (value: string) => string;
}

/**
 * POST /v1/chart-updates (role `writer`): the application's chart update, sealed to the
 * interface service and sent; 202 `{id}` once SQS has accepted it. The interface service
 * delivers it to the EMR with the id as the idempotency key. On FIFO queues updates with the
 * same `Ordering-Key` (the record they change), or from the same writer when they name none,
 * reach the EMR in the order they were accepted.
 */
export const chartUpdateRoutes: FastifyPluginAsync<ChartUpdateOptions> = async (app, options) => {
  app.addContentTypeParser(ACCEPTED_MEDIA_TYPES as string[], { parseAs: 'buffer', bodyLimit: options.bodyLimit }, (_request, body, done) => done(null, body));
  app.post(
    '/v1/chart-updates',
    {
      bodyLimit: options.bodyLimit,
      config: { role: 'writer' },
      onRequest: async () => {
        if (options.emergency.active) throw httpErrors.emergency();
      },
      schema: {
        summary: 'Send a chart update to the EMR (FHIR JSON, HL7 v2, C-CDA XML)',
        headers: {
          type: 'object',
          properties: {
            'idempotency-key': { type: 'string', maxLength: 200 },
            [ORDERING_KEY_HEADER]: { type: 'string', minLength: 1, maxLength: 200, description: 'The record the update changes (e.g. a patient id): same key, same order at the EMR. Never leaves the service; only a bucket of its keyed hash does.' },
          },
        },
        response: { 202: { type: 'object', required: ['id'], properties: { id: { type: 'string' } } } },
      },
    },
    async (request, reply) => {
      const format = formatFor(request.headers['content-type']);
      const body = request.body;
      if (!Buffer.isBuffer(body)) throw httpErrors.unsupportedMediaType();
      checkPayload(format, body);
      const actor = request.principal?.name ?? 'unknown';
      const key = request.headers['idempotency-key'];
      const record = request.headers[ORDERING_KEY_HEADER];
      const orderingKey = orderingBucket(options.hash, { orderingKey: typeof record === 'string' ? record : undefined, actor });
      const { id } = await options.idempotency.run(actor, typeof key === 'string' ? key : undefined, body, format.contentType, (id) =>
        options.outbound.send({ id, kind: 'chart.update', contentType: format.contentType, bodyEncoding: format.bodyEncoding, body, actor, sourceIp: request.ip, orderingKey }),
      );
      return reply.code(202).send({ id });
    },
  );
};
