import type { SqsAttributes } from './attributes.ts';

/** Largest SQS message, body plus attributes, in bytes (1 MiB). */
export const SQS_MAX_MESSAGE_BYTES = 1_048_576;

/**
 * The size SQS charges against its limit: UTF-8 bytes of the body plus, for each
 * attribute, the bytes of its name, its data type and its value (string or binary).
 */
export function sqsMessageSize(body: string, attributes: SqsAttributes = {}): number {
  let size = Buffer.byteLength(body, 'utf8');
  for (const [name, value] of Object.entries(attributes)) {
    size += Buffer.byteLength(name, 'utf8');
    size += Buffer.byteLength(value.DataType ?? '', 'utf8');
    if (value.StringValue !== undefined) size += Buffer.byteLength(value.StringValue, 'utf8');
    if (value.BinaryValue !== undefined) size += value.BinaryValue.byteLength;
  }
  return size;
}
