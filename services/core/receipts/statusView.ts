import { UUIDV7_PATTERN } from '../envelope/uuidv7.ts';
import type { StatusRecord } from '../state/statusStore.ts';
import { StatusError } from './errors.ts';

/** The JSON answer of a status route: the current status and the timeline, ids and codes only. */
export interface StatusView {
  /** The envelope id. */
  id: string;
  /** The furthest status reached. */
  status: string;
  /** Its reason code, for a refusal or a failure. */
  reasonCode?: string;
  /** Every step known, in lifecycle order, each with its time. */
  timeline: StatusRecord['timeline'];
}

/** The response schema of a status route (OpenAPI), given the statuses it can hold. */
export function statusViewSchema(statuses: readonly string[]): Record<string, unknown> {
  const status = { type: 'string', enum: [...statuses] };
  return {
    type: 'object',
    required: ['id', 'status', 'timeline'],
    properties: {
      id: { type: 'string' },
      status,
      reasonCode: { type: 'string', description: 'CR_* code of a rejection, dead-letter or failure' },
      timeline: {
        type: 'array',
        items: {
          type: 'object',
          required: ['status', 'at'],
          properties: {
            status,
            at: { type: 'string', format: 'date-time' },
            reasonCode: { type: 'string' },
            emrStatus: { type: 'integer', description: "The EMR's HTTP status (delivered)" },
            ackCode: { type: 'string', description: "The EMR's HL7 ACK code (MLLP)" },
          },
        },
      },
    },
  };
}

/** The view of a record; throws the route's 404 (the same for an unknown id and one the caller may not read). */
export function statusView(id: string, record: StatusRecord | undefined): StatusView {
  if (!record) throw new StatusError('CR_STATUS_NOT_FOUND', 'No status for this id.');
  const current = record.timeline.find((s) => s.status === record.status);
  return { id, status: record.status, ...(current?.reasonCode ? { reasonCode: current.reasonCode } : {}), timeline: record.timeline };
}

/** True when `id` could be an envelope id (anything else is answered 404 without a store call). */
export function isEnvelopeId(id: string): boolean {
  return UUIDV7_PATTERN.test(id);
}
