import type { FastifyPluginAsync } from 'fastify';
import type { EmergencySwitch } from './emergency.ts';

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

/**
 * GET/PUT /v1/admin/emergency (role `admin`): read or switch emergency mode. Register it
 * in a scope that has the auth plugin. The change is audited with the admin's name and address.
 */
export const adminRoutes: FastifyPluginAsync<AdminRoutesOptions> = async (app, options) => {
  app.get('/v1/admin/emergency', { config: { role: 'admin' }, schema: { summary: 'Emergency mode state', response: { 200: stateSchema } } }, async () => ({
    active: options.emergency.active,
  }));
  app.put<{ Body: { active: boolean } }>(
    '/v1/admin/emergency',
    { config: { role: 'admin' }, schema: { summary: 'Switch emergency mode on or off', body: stateSchema, response: { 200: stateSchema } } },
    async (request) => {
      await options.emergency.set(request.body.active, { actor: request.principal?.name ?? 'unknown', sourceIp: request.ip });
      request.log.warn({ active: request.body.active, actor: request.principal?.name }, 'emergency mode changed');
      return { active: options.emergency.active };
    },
  );
};
