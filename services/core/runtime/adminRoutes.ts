import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { httpErrors } from '../http/errors.ts';
import type { EmergencySwitch } from './emergency.ts';
import { EMERGENCY_REASON_MAX } from './emergencyStore.ts';

/** Options for {@link adminRoutes}. */
export interface AdminRoutesOptions {
  /** The service's emergency switch. */
  emergency: EmergencySwitch;
}

const stateSchema = {
  type: 'object',
  required: ['active'],
  additionalProperties: false,
  properties: { active: { type: 'boolean', description: 'true while emergency mode is on' } },
} as const;

const switchSchema = {
  type: 'object',
  required: ['active'],
  additionalProperties: false,
  properties: {
    active: { type: 'boolean', description: 'true to switch emergency mode on, false to switch it off' },
    reason: { type: 'string', minLength: 1, maxLength: EMERGENCY_REASON_MAX, description: 'why (kept with the persisted state; never logged)' },
  },
} as const;

// Checked on the body as parsed, before fastify's schema validation, which would coerce
// `null`, `0` or `"false"` to a boolean: only a real JSON boolean may flip the switch.
const switchBody = z.strictObject({ active: z.boolean(), reason: z.string().min(1).max(EMERGENCY_REASON_MAX).optional() });

/**
 * GET/PUT /v1/admin/emergency (role `admin`): read or switch emergency mode. Register it
 * in a scope that has the auth plugin. The change is persisted and audited with the admin's
 * name and address.
 */
export const adminRoutes: FastifyPluginAsync<AdminRoutesOptions> = async (app, options) => {
  app.get('/v1/admin/emergency', { config: { role: 'admin' }, schema: { summary: 'Emergency mode state', response: { 200: stateSchema } } }, async () => ({
    active: options.emergency.active,
  }));
  app.put<{ Body: { active: boolean; reason?: string } }>(
    '/v1/admin/emergency',
    {
      config: { role: 'admin' },
      schema: { summary: 'Switch emergency mode on or off', body: switchSchema, response: { 200: stateSchema } },
      preValidation: async (request) => {
        const parsed = switchBody.safeParse(request.body);
        if (!parsed.success) {
          // The path holds schema keys only (an unknown key is reported at the root), never a value.
          const path = parsed.error.issues[0]?.path.join('.');
          throw httpErrors.validation(`${path ? `body.${path}` : 'body'} is invalid: expected {"active": true|false} and an optional "reason" of 1 to ${EMERGENCY_REASON_MAX} characters`);
        }
      },
    },
    async (request) => {
      const { active, reason } = request.body;
      await options.emergency.set(active, { actor: request.principal?.name ?? 'unknown', sourceIp: request.ip, ...(reason ? { reason } : {}) });
      request.log.warn({ active, actor: request.principal?.name }, 'emergency mode changed');
      return { active: options.emergency.active };
    },
  );
};
