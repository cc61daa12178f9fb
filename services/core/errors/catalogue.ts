import { AUDIT_ERRORS } from '../audit/errors.ts';
import { CONFIG_ERRORS } from '../config/env.ts';
import { CONSOLE_ERRORS } from '../console/errors.ts';
import { ENVELOPE_ERRORS } from '../envelope/errors.ts';
import { HTTP_ERRORS, HTTP_SETUP_ERRORS } from '../http/errors.ts';
import { KEY_ERRORS } from '../keys/errors.ts';
import { OBJECT_ERRORS } from '../objects/errors.ts';
import { OPS_ERRORS } from '../ops/errors.ts';
import { RELAY_ERRORS } from '../relay/errors.ts';
import { EMERGENCY_ERRORS } from '../runtime/emergencyStore.ts';
import { RECEIPT_ERRORS } from '../receipts/errors.ts';
import { STATE_ERRORS } from '../state/errors.ts';
import { TRANSPORT_ERRORS } from '../transport/errors.ts';
import type { ErrorCatalogue } from './defineErrors.ts';

/**
 * The error catalogues of core, by area. Each service adds its own (the app's SMS codes, the
 * interface's EMR reasons) next to these; the docs test walks them all against docs/errors.md.
 */
export const CORE_ERROR_CATALOGUES: Readonly<Record<string, ErrorCatalogue>> = {
  http: HTTP_ERRORS,
  'http-setup': HTTP_SETUP_ERRORS,
  audit: AUDIT_ERRORS,
  config: CONFIG_ERRORS,
  envelope: ENVELOPE_ERRORS,
  keys: KEY_ERRORS,
  relay: RELAY_ERRORS,
  objects: OBJECT_ERRORS,
  emergency: EMERGENCY_ERRORS,
  state: STATE_ERRORS,
  receipts: RECEIPT_ERRORS,
  console: CONSOLE_ERRORS,
  transport: TRANSPORT_ERRORS,
  ops: OPS_ERRORS,
};
