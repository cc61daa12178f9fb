import { describe, expect, it } from 'vitest';
import { chargeSamples, componentOf, partOf, partShares, type Profile } from '../../bench/profileParts.ts';

// A call tree as V8 writes it: root → an SDK middleware → a Node internal (socket write),
// root → openpgp → a Node internal (WebCrypto's job), root → (idle), root → (garbage collector),
// root → a project folder's function.
const frame = (functionName: string, url: string) => ({ functionName, url, lineNumber: 0 });
const profile: Profile = {
  nodes: [
    { id: 1, callFrame: frame('(root)', ''), children: [2, 4, 6, 7, 8] },
    { id: 2, callFrame: frame('retry', 'file:///srv/app/node_modules/@smithy/core/dist-cjs/index.js'), children: [3] },
    { id: 3, callFrame: frame('writev', 'node:internal/stream_base_commons') },
    { id: 4, callFrame: frame('encrypt', 'file:///srv/app/node_modules/openpgp/dist/node/openpgp.mjs'), children: [5] },
    { id: 5, callFrame: frame('jobPromise', 'node:internal/crypto/util') },
    { id: 6, callFrame: frame('(idle)', '') },
    { id: 7, callFrame: frame('(garbage collector)', '') },
    { id: 8, callFrame: frame('record', 'file:///srv/app/services/core/audit/auditLog.ts') },
  ],
  samples: [3, 3, 5, 6, 6, 6, 6, 7, 8, 2],
  timeDeltas: [100, 100, 100, 100, 100, 100, 100, 100, 100, 100],
};

describe('bench profile parts', () => {
  it('names packages, project folders and V8 entries, never a machine path', () => {
    expect(componentOf('file:///srv/app/node_modules/@smithy/core/dist-cjs/index.js', 'x')).toBe('@smithy/core');
    expect(componentOf('file:///srv/app/node_modules/openpgp/dist/node/openpgp.mjs', 'x')).toBe('openpgp');
    expect(componentOf('file:///srv/app/services/core/runtime/awsSha256.ts', 'x')).toBe('services/core/runtime/awsSha256');
    expect(componentOf('file:///srv/app/services/core/state/dynamoJson.ts', 'x')).toBe('services/core/state/dynamoJson');
    expect(componentOf('file:///srv/app/services/core/state/table.ts', 'x')).toBe('services/core/state');
    expect(componentOf('file:///srv/app/services/core/runtime/lifecycle.ts', 'x')).toBe('services/core/runtime');
    expect(componentOf('node:internal/http', 'x')).toBe('node internals');
    expect(componentOf('', '(garbage collector)')).toBe('(garbage collector)');
    expect(componentOf('', 'writev')).toBe('(native)');
  });

  it('charges Node internals to their nearest package or project caller', () => {
    const charged = chargeSamples(profile);
    expect(charged[0]).toMatchObject({ component: 'node internals', owner: '@smithy/core', us: 100 });
    expect(charged[2]).toMatchObject({ component: 'node internals', owner: 'openpgp' });
    expect(charged[3]).toMatchObject({ owner: '(idle)' });
    expect(charged[8]).toMatchObject({ owner: 'services/core/audit' });
  });

  it('sorts owners into parts, idle into none', () => {
    expect(partOf('(idle)')).toBeUndefined();
    expect(partOf('@aws-sdk/core')).toBe('awsSdk');
    expect(partOf('services/core/runtime/awsSha256')).toBe('awsSdk');
    expect(partOf('services/core/state/dynamoJson')).toBe('awsSdk');
    expect(partOf('services/core/state')).toBe('rest');
    expect(partOf('services/core/envelope')).toBe('crypto');
    expect(partOf('fastify')).toBe('http');
    expect(partOf('services/core/alerts')).toBe('audit');
    expect(partOf('pino')).toBe('log');
    expect(partOf('services/core/transport')).toBe('rest');
  });

  it('gives each part its share of the busy time sampled', () => {
    const { shares, busyUs } = partShares(profile);
    expect(busyUs).toBe(600);
    expect(shares.awsSdk).toBeCloseTo(3 / 6);
    expect(shares.crypto).toBeCloseTo(1 / 6);
    expect(shares.gc).toBeCloseTo(1 / 6);
    expect(shares.audit).toBeCloseTo(1 / 6);
    expect(shares.http + shares.log + shares.rest).toBe(0);
  });
});
