import { createHmac } from 'node:crypto';

/** The three Standard Webhooks headers of one attempt. */
export interface WebhookHeaders {
  /** The message id: the same on every attempt of one callback (receivers dedupe on it). */
  'webhook-id': string;
  /** Unix seconds of this attempt. */
  'webhook-timestamp': string;
  /** `v1,<base64 HMAC-SHA256>` per secret, space-separated. */
  'webhook-signature': string;
}

/**
 * Signs one attempt as the Standard Webhooks specification says: the signed content is
 * `${id}.${timestamp}.${body}` (the exact bytes sent), the signature the base64 HMAC-SHA256 of it
 * under each key (a `whsec_` secret's decoded bytes), each written `v1,<signature>`, all of them
 * space-separated (several keys during a rotation).
 */
export function signWebhook(input: { id: string; timestamp: number; body: string; keys: readonly Buffer[] }): WebhookHeaders {
  const timestamp = String(Math.floor(input.timestamp));
  const content = `${input.id}.${timestamp}.${input.body}`;
  const signatures = input.keys.map((key) => `v1,${createHmac('sha256', key).update(content, 'utf8').digest('base64')}`);
  return { 'webhook-id': input.id, 'webhook-timestamp': timestamp, 'webhook-signature': signatures.join(' ') };
}
