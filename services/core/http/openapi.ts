import swagger from '@fastify/swagger';
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import fp from 'fastify-plugin';

/** Options for {@link openapiPlugin}. */
export interface OpenapiPluginOptions {
  /** API title, e.g. `care-relay interface`. */
  title: string;
  /** API version shown in the document. */
  version: string;
  /** Longer description of the API. */
  description?: string;
  /** Public base URL, listed as the server when set. */
  publicBaseUrl?: string;
}

const problemSchema = {
  type: 'object',
  description: 'RFC 9457 problem document; `type` is stable per `code`',
  required: ['type', 'title', 'status', 'detail', 'code'],
  properties: {
    type: { type: 'string', format: 'uri' },
    title: { type: 'string' },
    status: { type: 'integer' },
    detail: { type: 'string' },
    code: { type: 'string' },
  },
  additionalProperties: true,
} as const;

/**
 * Generates the service's OpenAPI 3 document from route schemas (register it before the
 * routes) and serves it at GET /openapi.json (public). Routes with `config.role` are
 * marked as requiring the bearer scheme; `schema.hide` keeps a route out.
 */
export const openapiPlugin: FastifyPluginAsync<OpenapiPluginOptions> = fp(
  async (app: FastifyInstance, options: OpenapiPluginOptions) => {
    await app.register(swagger, {
      openapi: {
        openapi: '3.1.0',
        info: { title: options.title, version: options.version, ...(options.description ? { description: options.description } : {}) },
        ...(options.publicBaseUrl ? { servers: [{ url: options.publicBaseUrl }] } : {}),
        components: {
          securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
          schemas: { Problem: { ...problemSchema, required: [...problemSchema.required] } },
        },
      },
      hideUntagged: false,
      transform: ({ schema, url, route }) => {
        const role = (route.config as { role?: unknown } | undefined)?.role;
        if (role === undefined || schema?.hide) return { schema, url };
        return { schema: { ...schema, security: [{ bearer: [] }] }, url };
      },
    });
    app.get('/openapi.json', { config: { public: true }, schema: { hide: true }, logLevel: 'warn' }, async () => app.swagger());
  },
  { name: 'care-relay-openapi', fastify: '5.x' },
);
