import type { FastifyPluginAsync } from 'fastify';
import { httpErrors } from '../core/http/errors.ts';
import { StreamedBody } from '../core/http/streamingBody.ts';
import type { LargeOutbound } from '../core/objects/largeOutbound.ts';
import { registerRelayBodyParser, relayStreamedBody, sendOrStream } from '../core/objects/streamedIntake.ts';
import { checkPayload, formatFor } from '../core/relay/contentTypes.ts';
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
  /** Chart updates too large for one message, streamed through S3 (LARGE_OBJECT_BUCKET); absent = 413 as before. */
  large?: LargeOutbound | undefined;
}

/**
 * POST /v1/chart-updates (role `writer`): the application's chart update, sealed to the
 * interface service and sent; 202 `{id}` once SQS has accepted it. The interface service
 * delivers it to the EMR with the id as the idempotency key. On FIFO queues updates with the
 * same `Ordering-Key` (the record they change), or from the same writer when they name none,
 * reach the EMR in the order they were accepted. With LARGE_OBJECT_BUCKET an update past one
 * message is streamed, sealed and uploaded to S3 (its pointer goes on the queue), never held whole.
 */
export const chartUpdateRoutes: FastifyPluginAsync<ChartUpdateOptions> = async (app, options) => {
  const { large } = options;
  registerRelayBodyParser(app, { smallBytes: options.bodyLimit, large });
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
      const actor = request.principal?.name ?? 'unknown';
      const key = request.headers['idempotency-key'];
      const record = request.headers[ORDERING_KEY_HEADER];
      const orderingKey = orderingBucket(options.hash, { orderingKey: typeof record === 'string' ? record : undefined, actor });
      if (large && body instanceof StreamedBody) {
        const payload = { kind: 'chart.update', contentType: format.contentType, actor, sourceIp: request.ip, orderingKey };
        const { id, created } = await relayStreamedBody({ large, idempotency: options.idempotency }, request, { caller: actor, body, payload });
        // Answered from an earlier request's claim: its line is written again (that request may have stopped before it).
        if (!created) await large.recordCopy({ id, kind: 'chart.update', actor, sourceIp: request.ip });
        request.log.info({ envelopeId: id, object: true }, 'chart update accepted');
        return reply.code(202).send({ id });
      }
      if (!Buffer.isBuffer(body)) throw httpErrors.unsupportedMediaType();
      checkPayload(format, body);
      const { id, created } = await options.idempotency.run(actor, typeof key === 'string' ? key : undefined, body, format.contentType, (id) =>
        sendOrStream(options.outbound, large, { id, kind: 'chart.update', contentType: format.contentType, bodyEncoding: format.bodyEncoding, body, actor, sourceIp: request.ip, orderingKey }),
      );
      if (!created) await options.outbound.recordCopy({ id, kind: 'chart.update', actor, sourceIp: request.ip });
      return reply.code(202).send({ id });
    },
  );
};
