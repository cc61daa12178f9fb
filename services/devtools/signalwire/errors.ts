import type { ServerResponse } from 'node:http';

/** A SignalWire-shaped REST error body. */
export interface ApiErrorBody {
  /** Numeric error code (Twilio-compatible catalogue). */
  code: number;
  /** Human-readable message. */
  message: string;
  /** Link to the error's documentation. */
  more_info: string;
  /** HTTP status, repeated in the body as SignalWire does. */
  status: number;
}

/** Builds the JSON error body SignalWire answers with. */
export function apiError(status: number, code: number, message: string): ApiErrorBody {
  return { code, message, more_info: `https://developer.signalwire.com/compatibility-api/errors/${code}`, status };
}

/** Writes a JSON response. */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

/** Writes a SignalWire error. */
export function sendError(res: ServerResponse, status: number, code: number, message: string, headers: Record<string, string> = {}): void {
  sendJson(res, status, apiError(status, code, message), headers);
}

/** Error codes the fake uses (chosen from the Twilio-compatible catalogue SignalWire mirrors). */
export const ERR = {
  authentication: 20003,
  notFound: 20404,
  inProgress: 20009,
  tooManyRequests: 20429,
  internal: 20500,
  unavailable: 20503,
  missingTo: 21604,
  missingFrom: 21603,
  missingBody: 21602,
  invalidTo: 21211,
  invalidParameter: 21200,
  bodyNotRedaction: 21220,
} as const;
