// Ordering buckets of chart updates on FIFO queues: the same record (Ordering-Key) lands in the
// same bucket whoever writes it; without a key the writer's updates share one; only a small
// bucket number leaves the service, never the key or its hash.
import { describe, expect, it } from 'vitest';
import { hashId } from '../../../services/core/log/logger.ts';
import { ORDERING_BUCKETS, orderingBucket } from '../../../services/core/relay/ordering.ts';

const KEY = 'k'.repeat(32);
const hash = (value: string): string => hashId(KEY, value);

describe('orderingBucket', () => {
  it('one bucket per record whoever writes it; a writer naming no record keeps one bucket of its own', () => {
    expect(orderingBucket(hash, { orderingKey: 'MRN-112233', actor: 'writer-a' })).toBe(orderingBucket(hash, { orderingKey: 'MRN-112233', actor: 'writer-b' }));
    expect(orderingBucket(hash, { actor: 'writer-a' })).toBe(orderingBucket(hash, { actor: 'writer-a' }));
    // An empty header names no record.
    expect(orderingBucket(hash, { orderingKey: '', actor: 'writer-a' })).toBe(orderingBucket(hash, { actor: 'writer-a' }));
  });

  it('spreads records over the buckets and reveals neither the key nor its hash', () => {
    const buckets = new Set<string>();
    for (let i = 0; i < 2000; i++) {
      const bucket = orderingBucket(hash, { orderingKey: `MRN-${i}`, actor: 'writer' });
      expect(bucket).toMatch(/^\d{1,2}$/);
      expect(Number(bucket)).toBeLessThan(ORDERING_BUCKETS);
      expect(bucket).not.toContain(hash(`record:MRN-${i}`));
      buckets.add(bucket);
    }
    expect(buckets.size).toBe(ORDERING_BUCKETS);
  });

  it('depends on the HMAC key: another deployment puts the same record elsewhere', () => {
    const other = (value: string): string => hashId('o'.repeat(32), value);
    const differs = Array.from({ length: 50 }, (_, i) => `MRN-${i}`).some((k) => orderingBucket(hash, { orderingKey: k, actor: 'w' }) !== orderingBucket(other, { orderingKey: k, actor: 'w' }));
    expect(differs).toBe(true);
  });
});
