import { payloadOf } from '../../core/objects/pointer.ts';
import type { EmrClient } from './emrClient.ts';

/** Options for {@link routeByContentType}. */
export interface EmrRoutes {
  /** The HTTP(S) client: every content type not routed elsewhere. */
  http: EmrClient;
  /** The MLLP client, when an MLLP destination is configured. */
  mllp?: EmrClient;
  /** Content types that go over MLLP (HL7 v2). */
  mllpContentTypes?: readonly string[];
}

/**
 * One EmrClient that hands each chart update to the destination its content type is configured
 * for: the payload's, also when the payload came through S3 (the envelope then carries a pointer).
 */
export function routeByContentType(routes: EmrRoutes): EmrClient {
  const mllp = routes.mllp;
  if (!mllp) return routes.http;
  const types = new Set(routes.mllpContentTypes ?? ['application/hl7-v2']);
  return {
    deliver: (envelope, signal) => (types.has(payloadOf(envelope).contentType) ? mllp : routes.http).deliver(envelope, signal),
  };
}
