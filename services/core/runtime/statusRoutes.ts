import type { FastifyPluginAsync } from 'fastify';
import type { AuditSink } from '../audit/types.ts';
import type { EmergencySwitch } from './emergency.ts';

/** Options for {@link statusRoutes}. */
export interface StatusRoutesOptions {
  /** The service name (`interface`, `app`). */
  service: string;
  /** The service's emergency switch. */
  emergency: EmergencySwitch;
  /** The audit trail; its head is reported when it has one (the hash-chained file does). */
  audit: AuditSink & { head?: () => { seq: number; hash: string } };
  /** App: the inbox fill. */
  inbox?: { readonly size: number; readonly capacity: number };
}

const statusSchema = {
  type: 'object',
  required: ['service', 'emergency', 'auditHead', 'inbox'],
  additionalProperties: false,
  properties: {
    service: { type: 'string' },
    emergency: { type: 'object', required: ['active'], additionalProperties: false, properties: { active: { type: 'boolean' } } },
    auditHead: {
      type: ['object', 'null'],
      required: ['seq', 'hash'],
      additionalProperties: false,
      properties: { seq: { type: 'integer', description: 'sequence number of the last durable line' }, hash: { type: 'string', description: 'its chain hash (hex)' } },
    },
    inbox: {
      type: ['object', 'null'],
      required: ['records', 'capacity'],
      additionalProperties: false,
      properties: { records: { type: 'integer' }, capacity: { type: 'integer' } },
      description: 'app only: records held and the capacity; null on the interface',
    },
  },
} as const;

/**
 * GET /v1/admin/status (role `admin`): what only the running process knows, for `care-relay
 * status` and the console: emergency mode as this instance applies it, the audit trail head,
 * and (app) the inbox fill. Counts and hashes only. Register it in a scope that has the auth plugin.
 */
export const statusRoutes: FastifyPluginAsync<StatusRoutesOptions> = async (app, options) => {
  app.get('/v1/admin/status', { config: { role: 'admin' }, schema: { summary: 'Service status for operators', response: { 200: statusSchema } } }, async () => ({
    service: options.service,
    emergency: { active: options.emergency.active },
    auditHead: typeof options.audit.head === 'function' ? options.audit.head() : null,
    inbox: options.inbox ? { records: options.inbox.size, capacity: options.inbox.capacity } : null,
  }));
};
