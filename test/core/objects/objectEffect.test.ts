// The receiving wrapper of large documents (withLargeObjects) before its effect runs: a late copy of
// an envelope already applied, whose object was deleted once it was done, is a duplicate (asked of
// the effect's own dedupe), not retried and quarantined as CR_OBJECT_MISSING; and the objects
// fetched and checked at once are bounded (the app may hand over INBOX_CAPACITY messages at once).
import { describe, expect, it } from 'vitest';
import type { Envelope } from '../../../services/core/envelope/envelope.ts';
import { uuidv7 } from '../../../services/core/envelope/uuidv7.ts';
import type { ServiceKeys } from '../../../services/core/keys/load.ts';
import { OBJECT_CHECKS, withLargeObjects } from '../../../services/core/objects/objectEffect.ts';
import type { ObjectRead, ObjectStore } from '../../../services/core/objects/objectStore.ts';
import { OBJECT_POINTER_TYPE, encodePointer, objectKey } from '../../../services/core/objects/pointer.ts';
import type { HandlerResult, ReceivedMessage } from '../../../services/core/transport/consumerTypes.ts';
import { captureLogger } from '../../helpers/logs.ts';
import { waitFor } from '../../helpers/wait.ts';

const BUCKET = 'b-objects';

function pointerEnvelope(id = uuidv7()): Envelope {
  const body = encodePointer({ bucket: BUCKET, key: objectKey('', 'interface-to-app', id), bytes: 10, sha256: 'a'.repeat(64), contentType: 'application/xml' });
  return { v: 1, id, kind: 'care.submission', from: 'interface', to: 'app', queue: 'interface-to-app', sentAt: new Date().toISOString(), contentType: OBJECT_POINTER_TYPE, body, bodyEncoding: 'utf8', sha256: 'b'.repeat(64) };
}

const message = (envelope: Envelope, receiveCount: number): ReceivedMessage => ({
  messageId: `m-${envelope.id}`,
  body: '',
  attributes: {},
  envelopeId: envelope.id,
  receiveCount,
  sentAt: undefined,
  queue: envelope.queue,
});

/** A bucket whose reads are answered by `read` (counted while they run). */
function store(read: (key: string) => Promise<ObjectRead>) {
  const stats = { reading: 0, most: 0, removed: [] as string[] };
  const s: ObjectStore = {
    bucket: BUCKET,
    upload: async () => 'etag',
    async read(key) {
      stats.reading += 1;
      stats.most = Math.max(stats.most, stats.reading);
      try {
        return await read(key);
      } finally {
        stats.reading -= 1;
      }
    },
    remove: async (key) => void stats.removed.push(key),
  };
  return { store: s, stats };
}

const keys = {} as ServiceKeys;
const missing = async (): Promise<ObjectRead> => ({ status: 'missing' });

describe('withLargeObjects: a missing object', () => {
  it('of an envelope its effect already applied (a late copy) is a duplicate: not retried, not quarantined, the effect not run', async () => {
    const logger = captureLogger('app');
    const { store: s } = store(missing);
    const asked: string[] = [];
    let ran = 0;
    const effects = withLargeObjects(
      { 'care.submission': async () => ((ran += 1), { status: 'done' }) },
      { store: s, keys, queuePrefix: '', missingAttempts: 3, logger: logger.logger, alreadyApplied: async (e) => (asked.push(e.id), true) },
    );
    const envelope = pointerEnvelope();
    for (const receives of [1, 3]) {
      const result = await effects['care.submission']!(envelope, message(envelope, receives), new AbortController().signal);
      expect(result.status).toBe('duplicate');
    }
    expect(asked).toEqual([envelope.id, envelope.id]);
    expect(ran).toBe(0);
    expect(logger.lines.join('\n')).not.toContain('large object missing');
  });

  it('of an envelope not applied is retried, then quarantined as CR_OBJECT_MISSING', async () => {
    const logger = captureLogger('app');
    const { store: s } = store(missing);
    const effects = withLargeObjects(
      { 'care.submission': async () => ({ status: 'done' }) },
      { store: s, keys, queuePrefix: '', missingAttempts: 3, logger: logger.logger, alreadyApplied: async () => false },
    );
    const envelope = pointerEnvelope();
    const signal = new AbortController().signal;
    expect((await effects['care.submission']!(envelope, message(envelope, 1), signal)).status).toBe('retry');
    expect(await effects['care.submission']!(envelope, message(envelope, 3), signal)).toEqual({ status: 'quarantine', reason: 'CR_OBJECT_MISSING' });
  });
});

describe('withLargeObjects: concurrent checks', () => {
  it(`fetches and checks at most ${OBJECT_CHECKS} objects at once; the others wait their turn, and one whose message is released leaves the line`, async () => {
    const logger = captureLogger('app');
    const waiting: Array<() => void> = [];
    let open = false;
    const { store: s, stats } = store(() => (open ? missing() : new Promise<ObjectRead>((resolve) => waiting.push(() => resolve({ status: 'missing' })))));
    const effects = withLargeObjects({ 'care.submission': async () => ({ status: 'done' }) }, { store: s, keys, queuePrefix: '', missingAttempts: 3, logger: logger.logger });
    const effect = effects['care.submission']!;
    const released = new AbortController();
    const results: Array<Promise<HandlerResult>> = [];
    for (let i = 0; i < 20; i += 1) {
      const envelope = pointerEnvelope();
      results.push(effect(envelope, message(envelope, 1), i === 10 ? released.signal : new AbortController().signal));
    }
    await waitFor(() => stats.reading === OBJECT_CHECKS, { what: 'the first checks under way' });
    released.abort();
    expect(await results[10]).toEqual({ status: 'release' });
    expect(stats.reading).toBe(OBJECT_CHECKS);
    open = true;
    waiting.splice(0).forEach((go) => go());
    const settled = await Promise.all(results);
    expect(settled.filter((r) => r.status === 'retry')).toHaveLength(19);
    expect(stats.most).toBe(OBJECT_CHECKS);
  });
});
