// The outbound path runs `beforeSend` (the interface's `accepted` status write) while the
// payload is sealed (issue 17's tail latency), and sends nothing unless both succeeded.
import { describe, expect, it } from 'vitest';
import type { Envelope } from '../../../services/core/envelope/envelope.ts';
import type { RelayCrypto } from '../../../services/core/relay/crypto.ts';
import { createOutbound, type OutboundPayload } from '../../../services/core/relay/outbound.ts';
import { recordingProducer } from '../../helpers/outboundFakes.ts';
import { waitFor } from '../../helpers/wait.ts';

const payload: OutboundPayload = { id: '0190c0de-0000-7000-8000-000000000001', kind: 'care.submission', contentType: 'application/fhir+json', bodyEncoding: 'utf8', body: Buffer.from('{"resourceType":"Patient"}'), partner: 'acme', actor: 'acme' };

/** Crypto whose seals stay pending until the test settles them. */
function heldCrypto(): RelayCrypto & { seals: Array<{ envelope: Envelope; resolve: () => void; reject: (err: Error) => void }> } {
  const seals: Array<{ envelope: Envelope; resolve: () => void; reject: (err: Error) => void }> = [];
  return {
    seals,
    seal: (envelope) =>
      new Promise((resolve, reject) =>
        seals.push({ envelope, resolve: () => resolve({ body: 'armored', attributes: { 'cr-version': '1', 'cr-envelope-id': envelope.id, 'cr-signer': 'AB' } as never }), reject }),
      ),
    open: () => Promise.reject(new Error('not used')),
    close: async () => {},
  };
}

describe('outbound: beforeSend overlaps the seal', () => {
  it('starts sealing before the status write finished, and sends only once both are done', async () => {
    const crypto = heldCrypto();
    const producer = recordingProducer();
    const outbound = createOutbound({ crypto, producer, from: 'interface', to: 'app', queue: 'interface-to-app' });
    let accept!: () => void;
    let writes = 0;
    const sending = outbound.send(payload, () => (writes++, new Promise<void>((resolve) => (accept = resolve))));
    await waitFor(() => crypto.seals.length === 1 && writes === 1);
    crypto.seals[0]!.resolve();
    await new Promise((r) => setImmediate(r));
    expect(producer.sent, 'sealed, but the status write is not done: nothing sent').toEqual([]);
    accept();
    expect(await sending).toBe(payload.id);
    expect(producer.sent).toEqual([payload.id]);
  });

  it('a failed status write sends nothing and fails the send, even though the seal succeeded', async () => {
    const crypto = heldCrypto();
    const producer = recordingProducer();
    const outbound = createOutbound({ crypto, producer, from: 'interface', to: 'app', queue: 'interface-to-app' });
    const sending = outbound.send(payload, () => Promise.reject(new Error('state table unavailable')));
    await waitFor(() => crypto.seals.length === 1);
    crypto.seals[0]!.resolve();
    await expect(sending).rejects.toThrow('state table unavailable');
    expect(producer.sent).toEqual([]);
  });

  it('a failed seal sends nothing, whatever the status write does', async () => {
    const crypto = heldCrypto();
    const producer = recordingProducer();
    const outbound = createOutbound({ crypto, producer, from: 'interface', to: 'app', queue: 'interface-to-app' });
    const sending = outbound.send(payload, async () => {});
    await waitFor(() => crypto.seals.length === 1);
    crypto.seals[0]!.reject(new Error('no usable key'));
    await expect(sending).rejects.toThrow('no usable key');
    expect(producer.sent).toEqual([]);
  });
});
