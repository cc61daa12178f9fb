import type { FastifyPluginAsync } from 'fastify';
import type { AuditSink } from '../../core/audit/types.ts';
import type { Readable } from 'node:stream';
import { bodyBytes, type Envelope } from '../../core/envelope/envelope.ts';
import { isPointerEnvelope } from '../../core/objects/pointer.ts';
import { httpErrors } from '../../core/http/errors.ts';
import type { EmergencySwitch } from '../../core/runtime/emergency.ts';
import type { Inbox } from './inbox.ts';

/** Options for {@link inboxRoutes}. */
export interface InboxRoutesOptions {
  /** The inbox. */
  inbox: Inbox;
  /** Audit trail: every payload read is a PHI access. */
  audit: AuditSink;
  /** Emergency switch: reads are refused while on. */
  emergency: EmergencySwitch;
  /**
   * Whether the record `id` was acknowledged before, here or at another instance (its id marked
   * applied in the shared state table): a repeated ack is answered 200 and audited again, marked copy.
   */
  acknowledgedBefore: (id: string) => Promise<boolean>;
  /** Opens a large record's sealed object as a checked plaintext stream; undefined when it is gone. */
  readObject?: ((envelope: Envelope) => Promise<{ contentType: string; bytes: number; plaintext: Readable } | undefined>) | undefined;
}

const NOT_FINAL = 'The record was acknowledged but neither marked applied nor its queue message deleted yet; it may be delivered again. Acknowledge it again if it reappears.';

const idParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', pattern: '^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$' } },
} as const;

const summarySchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    kind: { type: 'string' },
    partner: { type: 'string' },
    contentType: { type: 'string' },
    sentAt: { type: 'string' },
    receivedAt: { type: 'string' },
    bytes: { type: 'integer' },
  },
} as const;

/**
 * The inbox API: list (metadata only), read one payload (audited PHI access), and
 * acknowledge (marked applied, then the SQS message is deleted). Register in a scope with the auth plugin.
 */
export const inboxRoutes: FastifyPluginAsync<InboxRoutesOptions> = async (app, options) => {
  const { inbox, audit, emergency } = options;
  const refuseInEmergency = async (): Promise<void> => {
    if (emergency.active) throw httpErrors.emergency();
  };

  app.get<{ Querystring: { limit?: number; after?: string } }>(
    '/v1/inbox',
    {
      config: { role: 'reader' },
      onRequest: refuseInEmergency,
      schema: {
        summary: 'List held records (metadata only, oldest first)',
        querystring: { type: 'object', additionalProperties: false, properties: { limit: { type: 'integer', minimum: 1, maximum: 1000 }, after: idParams.properties.id } },
        response: { 200: { type: 'object', properties: { records: { type: 'array', items: summarySchema }, held: { type: 'integer' }, capacity: { type: 'integer' } } } },
      },
    },
    async (request) => ({ records: inbox.list(request.query.limit ?? 100, request.query.after), held: inbox.size, capacity: inbox.capacity }),
  );

  app.get<{ Params: { id: string } }>(
    '/v1/inbox/:id',
    {
      config: { role: 'reader' },
      onRequest: refuseInEmergency,
      schema: { summary: 'Read one record: the payload, with its content type', params: idParams },
    },
    async (request, reply) => {
      const envelope = inbox.get(request.params.id);
      if (!envelope) throw httpErrors.notFound('No record with this id is held in the inbox.');
      const auditRead = (outcome: 'success' | 'failure'): Promise<void> =>
        audit.record({
          action: 'inbox.read',
          actor: request.principal?.name ?? 'unknown',
          resourceType: 'inbox-record',
          resourceId: envelope.id,
          outcome,
          sourceIp: request.ip,
          details: { kind: envelope.kind },
        });
      if (isPointerEnvelope(envelope)) {
        // A large record is decrypted from S3 as it is sent: memory stays bounded whatever its size.
        // Its read is audited once the object is open, as a failure when it cannot be.
        let object: Awaited<ReturnType<NonNullable<InboxRoutesOptions['readObject']>>>;
        try {
          object = await options.readObject?.(envelope);
        } catch (err) {
          await auditRead('failure');
          throw err;
        }
        if (!object) {
          await auditRead('failure');
          throw httpErrors.unavailable(30, 'The record\'s document cannot be read from the object store right now; retry later.');
        }
        try {
          await auditRead('success');
        } catch (err) {
          // Not sent without its line: the open S3 read is closed.
          object.plaintext.destroy();
          throw err;
        }
        object.plaintext.on('error', (err: unknown) => request.log.warn({ envelopeId: envelope.id, code: (err as { code?: string }).code }, 'large record failed its checks while streaming'));
        return reply
          .header('content-type', object.contentType)
          .header('content-length', object.bytes)
          .header('cache-control', 'no-store')
          .header('x-envelope-id', envelope.id)
          .header('x-envelope-kind', envelope.kind)
          .header('x-envelope-sent-at', envelope.sentAt)
          .header('x-partner', envelope.partner ?? '')
          .send(object.plaintext);
      }
      await auditRead('success');
      return reply
        .header('content-type', envelope.contentType)
        .header('cache-control', 'no-store')
        .header('x-envelope-id', envelope.id)
        .header('x-envelope-kind', envelope.kind)
        .header('x-envelope-sent-at', envelope.sentAt)
        .header('x-partner', envelope.partner ?? '')
        .send(Buffer.from(bodyBytes(envelope)));
    },
  );

  app.post<{ Params: { id: string } }>(
    '/v1/inbox/:id/ack',
    {
      config: { role: 'reader' },
      onRequest: refuseInEmergency,
      schema: {
        summary: 'Acknowledge a record: it leaves the inbox and its queue message is deleted. Acknowledging it again (here or at another instance) answers the same',
        params: idParams,
        response: { 200: { type: 'object', properties: { id: { type: 'string' }, acked: { type: 'boolean' } } } },
      },
    },
    async (request) => {
      const { id } = request.params;
      const auditAck = (outcome: 'success' | 'failure', copy: boolean): Promise<void> =>
        audit.record({
          action: 'inbox.acked',
          actor: request.principal?.name ?? 'unknown',
          resourceType: 'inbox-record',
          resourceId: id,
          outcome,
          sourceIp: request.ip,
          ...(copy ? { details: { copy: true } } : {}),
        });
      if (!inbox.ack(id)) {
        // Not held here. Acknowledged before (here or at another instance)? Then the ack is the same:
        // 200 and its line again, marked copy. A crash, or a failed audit write, between the mark and
        // the first ack's line, or a lost answer, must not leave the acknowledgement without a line.
        const inFlight = inbox.settlement(id);
        let before: boolean;
        try {
          before = inFlight ? await inFlight : await options.acknowledgedBefore(id);
        } catch {
          throw httpErrors.unavailable(5, 'Whether this record was acknowledged cannot be read from the state table right now; retry later.');
        }
        if (!before) {
          if (inFlight) throw httpErrors.unavailable(5, NOT_FINAL);
          throw httpErrors.notFound('No record with this id is held in the inbox, and none with it was acknowledged.');
        }
        await auditAck('success', true);
        return { id, acked: true };
      }
      // 200 only once the ack is final (the id marked applied in the shared state, or else the queue
      // message deleted): a crash after a 200 must not bring the record back.
      const final = (await inbox.settlement(id)) ?? true;
      await auditAck(final ? 'success' : 'failure', false);
      if (!final) throw httpErrors.unavailable(5, NOT_FINAL);
      return { id, acked: true };
    },
  );
};
