import type { FastifyPluginAsync } from 'fastify';
import { isEnvelopeId, statusView, statusViewSchema } from '../../core/receipts/statusView.ts';
import { CHART_UPDATE_RANKS, type ChartUpdateStatusTracker } from './chartUpdateStatus.ts';

/**
 * GET /v1/chart-updates/{id} (role `writer`): where a chart update stands,
 * `accepted → queued → delivered` (with the EMR's HTTP status or HL7 ACK code) or `failed`
 * (reason code), each step with its time. An unknown or expired id gets 404.
 */
export const chartUpdateStatusRoutes: FastifyPluginAsync<{ status: ChartUpdateStatusTracker }> = async (app, options) => {
  app.get<{ Params: { id: string } }>(
    '/v1/chart-updates/:id',
    {
      config: { role: 'writer' },
      schema: {
        summary: 'Where a chart update stands: its status and timeline',
        params: { type: 'object', required: ['id'], properties: { id: { type: 'string', maxLength: 64 } } },
        response: { 200: statusViewSchema(Object.keys(CHART_UPDATE_RANKS)) },
      },
    },
    async (request) => {
      const { id } = request.params;
      return statusView(id, isEnvelopeId(id) ? await options.status.get(id) : undefined);
    },
  );
};
