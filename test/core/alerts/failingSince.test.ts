import { describe, expect, it } from 'vitest';
import { watchAuditFailures } from '../../../services/core/alerts/auditWatch.ts';
import { FailingSince } from '../../../services/core/alerts/failingSince.ts';
import { oldestAgeSeconds } from '../../../services/core/alerts/queueDepth.ts';
import type { AuditSink } from '../../../services/core/audit/types.ts';

describe('failing since', () => {
  it('starts at the first failure, ignores later ones, resets on success', () => {
    const f = new FailingSince();
    expect(f.seconds(10_000)).toBe(0);
    f.failure(1_000);
    f.failure(5_000);
    expect(f.seconds(11_000)).toBe(10);
    f.success();
    expect(f.seconds(20_000)).toBe(0);
  });
});

describe('oldest waiting message estimate', () => {
  it('is 0 with nothing waiting, else the age of the last received message, else since start', () => {
    expect(oldestAgeSeconds(0, 1_000, 0, 100_000)).toBe(0);
    expect(oldestAgeSeconds(3, 40_000, 0, 100_000)).toBe(60);
    expect(oldestAgeSeconds(3, undefined, 70_000, 100_000)).toBe(30);
  });
});

describe('audit failure watch', () => {
  it('remembers a failed write, passes the failure on, and keeps the trail\'s other members', async () => {
    let fail = false;
    const trail: AuditSink & { file: string; close(): Promise<string> } = {
      file: 'trail.jsonl',
      record: async () => {
        if (fail) throw Object.assign(new Error('no space'), { code: 'ENOSPC' });
      },
      async close() {
        return this.file;
      },
    };
    const watched = watchAuditFailures(trail, () => 42);
    await watched.record({ action: 'key.loaded', actor: 'app', resourceType: 'key', outcome: 'success' });
    expect(watched.lastFailureAt).toBeUndefined();
    fail = true;
    await expect(watched.record({ action: 'key.loaded', actor: 'app', resourceType: 'key', outcome: 'success' })).rejects.toThrow('no space');
    expect(watched.lastFailureAt).toBe(42);
    expect(watched.file).toBe('trail.jsonl');
    expect(await watched.close()).toBe('trail.jsonl');
  });
});
