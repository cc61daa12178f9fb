import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { APP_QUEUES } from '../../services/app/service.ts';
import { segmentObjectKey } from '../../services/core/audit/archiver.ts';
import { checkpointObjectKey, parseS3Uri } from '../../services/core/audit/checkpointShip.ts';
import { STATE_SERVICES, stateTableName } from '../../services/core/state/tables.ts';
import { LOGICAL_QUEUES, physicalQueueName, queueDefinitions, type LogicalQueue } from '../../services/core/transport/queues.ts';
import { INTERFACE_QUEUES } from '../../services/interface/service.ts';

/** The queues each service resolves at start, as the services declare them. */
const resolvedBy: Record<'interface' | 'app', readonly string[]> = { interface: INTERFACE_QUEUES, app: APP_QUEUES };

// The least-privilege policies of docs/deploy.md: each service may only send in its own
// direction and receive in the other, and every queue they name is one the code creates.

const root = fileURLToPath(new URL('../../', import.meta.url));
const read = (path: string): string => readFileSync(`${root}${path}`, 'utf8');

interface Statement {
  Sid?: string;
  Effect: string;
  Action: string | string[];
  Resource: string | string[];
  Condition?: unknown;
}
interface Policy {
  Version: string;
  Statement: Statement[];
}

const list = (x: string | string[]): string[] => (Array.isArray(x) ? x : [x]);
const load = (name: string): Policy => JSON.parse(read(`deploy/iam/${name}`)) as Policy;
const ARN = /^arn:aws:sqs:REGION:ACCOUNT_ID:([A-Za-z0-9_-]+)$/;
/** The alerts topic `queues init` creates (services/core/alerts/topic.ts, no prefix). */
const TOPIC_ARN = 'arn:aws:sns:REGION:ACCOUNT_ID:care-relay-alerts';
const TABLE_ARN = /^arn:aws:dynamodb:REGION:ACCOUNT_ID:table\/([A-Za-z0-9_.-]+)$/;
/** The large-object bucket, or one direction's key prefix in it (`<queue>/*`). */
const LARGE_OBJECT_ARN = /^arn:aws:s3:::LARGE_OBJECT_BUCKET(\/(interface-to-app|app-to-interface)\/\*)?$/;
/** Whether every resource of a statement is in the large-object bucket. */
const onLargeObjects = (st: Statement): boolean => list(st.Resource).every((r) => LARGE_OBJECT_ARN.test(r));
/** S3 action → the resources (bucket, or `bucket/<queue>/*`) a policy grants it on in the large-object bucket. */
function s3Grants(policy: Policy): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const st of policy.Statement.filter((x) => serviceOf(x) === 's3' && onLargeObjects(x))) {
    for (const a of list(st.Action)) out.set(a, [...(out.get(a) ?? []), ...list(st.Resource)].sort());
  }
  return out;
}
/** The AWS service a statement's actions belong to (each statement names one). */
const serviceOf = (st: Statement): string => list(st.Action)[0]?.split(':')[0] ?? '';
const isSqs = (st: Statement): boolean => list(st.Action).every((a) => a.startsWith('sqs:'));
const isSns = (st: Statement): boolean => list(st.Action).every((a) => a.startsWith('sns:'));
const isDynamo = (st: Statement): boolean => list(st.Action).every((a) => a.startsWith('dynamodb:'));
const isS3 = (st: Statement): boolean => list(st.Action).every((a) => a.startsWith('s3:'));
/** An object prefix of the audit bucket (docs/deploy.md): `segments/` (AUDIT_ARCHIVE_S3_URI) or `checkpoints/` (AUDIT_CHECKPOINT_S3_URI), then the service. */
const AUDIT_ARN = /^arn:aws:s3:::AUDIT_BUCKET\/(segments|checkpoints)\/(interface|app)\/\*$/;
const sqsStatements = (policy: Policy): Statement[] => policy.Statement.filter(isSqs);

/** SQS action (without `sqs:`) → the queue names it is allowed on. */
function grants(policy: Policy): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const st of sqsStatements(policy)) {
    for (const action of list(st.Action)) {
      const set = out.get(action.replace(/^sqs:/, '')) ?? new Set<string>();
      for (const r of list(st.Resource)) set.add(ARN.exec(r)?.[1] ?? r);
      out.set(action.replace(/^sqs:/, ''), set);
    }
  }
  return out;
}
const on = (g: Map<string, Set<string>>, action: string): string[] => [...(g.get(action) ?? [])].sort();
const family = (q: LogicalQueue): string[] => (['main', 'dlq', 'quarantine'] as const).map((role) => physicalQueueName('', q, role));

// The documented default: no prefix, standard queues.
const defined = new Set(queueDefinitions({ prefix: '' }).map((d) => d.name));
const messageActions = ['SendMessage', 'ReceiveMessage', 'DeleteMessage', 'ChangeMessageVisibility', 'PurgeQueue'];
const serviceActions = ['SendMessage', 'ReceiveMessage', 'DeleteMessage', 'ChangeMessageVisibility', 'GetQueueUrl', 'GetQueueAttributes'];

const policies = {
  interface: load('interface-policy.json'),
  app: load('app-policy.json'),
  bootstrap: load('bootstrap-policy.json'),
};

describe.each(Object.entries(policies))('deploy/iam/%s policy', (name, policy) => {
  it('is an identity policy of Allow statements on named SQS queues, the alerts topic, named DynamoDB tables and the audit archive prefixes only', () => {
    expect(policy.Version).toBe('2012-10-17');
    expect(policy.Statement.length).toBeGreaterThan(0);
    for (const st of policy.Statement) {
      expect(st.Effect).toBe('Allow');
      expect(st.Sid, 'every statement says what it is for').toMatch(/^[A-Za-z0-9]+$/);
      for (const a of list(st.Action)) {
        expect(a, 'no wildcard action').not.toContain('*');
        expect(a, 'one AWS service per statement').toMatch(new RegExp(`^${serviceOf(st)}:[A-Za-z]+$`));
        expect(['sqs', 'sns', 'dynamodb', 's3'], a).toContain(serviceOf(st));
      }
      for (const r of list(st.Resource)) {
        // S3 object ARNs name a key prefix: the one wildcard allowed is the end of a direction's
        // prefix in the large-object bucket or of a service's own audit prefix.
        if (isS3(st)) {
          expect(r, 'S3 only on the large-object bucket (or a direction\'s prefix in it) or a service\'s audit prefix').toSatisfy((x: string) => LARGE_OBJECT_ARN.test(x) || AUDIT_ARN.test(x));
          continue;
        }
        expect(r, 'no wildcard resource').not.toContain('*');
        if (isSqs(st)) expect(r).toMatch(ARN);
        else if (isSns(st)) expect(r, 'SNS only on the alerts topic').toBe(TOPIC_ARN);
        else expect(r, 'DynamoDB only on a named table').toMatch(TABLE_ARN);
      }
    }
  });

  it('names only queues that services/core/transport/queues.ts defines', () => {
    for (const st of sqsStatements(policy)) {
      for (const r of list(st.Resource)) expect(defined.has(ARN.exec(r)![1]!), `${name}: ${r}`).toBe(true);
    }
  });

  it('is documented in docs/deploy.md', () => {
    expect(read('docs/deploy.md')).toContain(`deploy/iam/${name}-policy.json`);
  });
});

describe.each([
  { svc: 'interface', sends: 'interface-to-app', receives: ['app-to-interface', 'interface-partner-callbacks'], never: ['app-sms-redaction'] },
  { svc: 'app', sends: 'app-to-interface', receives: ['interface-to-app', 'app-sms-redaction'], never: ['interface-partner-callbacks'] },
] as const)('the $svc service', ({ svc, sends, receives, never }) => {
  const g = grants(policies[svc]);
  const peerDirection = sends === 'interface-to-app' ? 'app-to-interface' : 'interface-to-app';

  it('uses only the message and lookup actions a producer and consumer need', () => {
    for (const action of g.keys()) expect(serviceActions, `${svc} is granted ${action}`).toContain(action);
  });

  it(`sends to ${sends}, never into the other direction`, () => {
    expect(on(g, 'SendMessage')).toContain(sends);
    expect(on(g, 'SendMessage'), `${svc} could forge ${peerDirection}`).not.toContain(peerDirection);
  });

  it(`receives, deletes and extends only ${receives.join(' and ')}`, () => {
    for (const action of ['ReceiveMessage', 'DeleteMessage', 'ChangeMessageVisibility']) {
      expect(on(g, action), action).toEqual([...receives].sort());
    }
    expect(on(g, 'ReceiveMessage')).not.toContain(sends);
  });

  it('sends elsewhere only to the quarantine and dead-letter queues of what it consumes', () => {
    const allowed = new Set<string>([sends, ...receives.flatMap((q) => family(q).slice(1))]);
    if ((receives as readonly string[]).includes('app-sms-redaction')) allowed.add('app-sms-redaction'); // it enqueues its own redaction jobs
    if ((receives as readonly string[]).includes('interface-partner-callbacks')) allowed.add('interface-partner-callbacks'); // it enqueues its own callback jobs
    for (const q of on(g, 'SendMessage')) expect(allowed.has(q), `${svc} may send to ${q}`).toBe(true);
    for (const q of receives) {
      expect(on(g, 'SendMessage'), `${svc} quarantines ${q}`).toContain(physicalQueueName('', q, 'quarantine'));
      expect(on(g, 'SendMessage'), `${svc} dead-letters ${q}`).toContain(physicalQueueName('', q, 'dlq'));
    }
  });

  it('can look up the URL of every queue it resolves at start (main, DLQ and quarantine of each)', () => {
    const used = [sends, ...receives] as LogicalQueue[];
    expect(on(g, 'GetQueueUrl')).toEqual(used.flatMap(family).sort());
    // The queues the service asks the runtime to resolve, as the service declares them.
    expect([...resolvedBy[svc]].sort()).toEqual([...used].sort());
  });

  it('has no access at all to queues it does not use', () => {
    const touched = new Set([...g.values()].flatMap((s) => [...s]));
    for (const q of never) for (const name of family(q)) expect(touched.has(name), `${svc} touches ${name}`).toBe(false);
  });
});

/** DynamoDB action → table names it is allowed on. */
function tableGrants(policy: Policy): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const st of policy.Statement.filter(isDynamo)) {
    for (const a of list(st.Action)) out.set(a, [...(out.get(a) ?? []), ...list(st.Resource).map((r) => TABLE_ARN.exec(r)?.[1] ?? r)].sort());
  }
  return out;
}

/** The StateTable methods each DynamoDB action serves (services/core/state/table.ts). */
const METHOD_ACTION: Record<string, string> = { get: 'dynamodb:GetItem', put: 'dynamodb:PutItem', putMany: 'dynamodb:BatchWriteItem', update: 'dynamodb:UpdateItem', delete: 'dynamodb:DeleteItem', check: 'dynamodb:DescribeTable' };

/** The actions a service's code calls on its table: the StateTable methods its state modules use, plus the start check. */
function tableActionsUsed(files: string[]): string[] {
  const used = new Set<string>(['dynamodb:DescribeTable']);
  for (const file of files) for (const m of read(file).matchAll(/\btable\.(get|putMany|put|update|delete|check)\(/g)) used.add(METHOD_ACTION[m[1]!]!);
  return [...used].sort();
}

describe.each([
  { svc: 'interface', files: ['services/core/relay/idempotency.ts', 'services/core/state/deliveryLedger.ts', 'services/core/state/emergencyStore.ts', 'services/interface/callbacks/ledger.ts', 'services/core/console/sessions.ts'], other: 'app' },
  { svc: 'app', files: ['services/core/relay/idempotency.ts', 'services/core/state/applyLedger.ts', 'services/core/state/putBatcher.ts', 'services/core/state/emergencyStore.ts', 'services/core/console/sessions.ts'], other: 'interface' },
] as const)('the $svc service\'s state table', ({ svc, files, other }) => {
  const g = tableGrants(policies[svc]);

  it('is granted exactly the DynamoDB actions its code uses, on its own table only', () => {
    expect([...g.keys()].sort()).toEqual(tableActionsUsed([...files]));
    for (const tables of g.values()) expect(tables).toEqual([stateTableName('', svc)]);
  });

  it(`cannot reach the ${other} service's table`, () => {
    for (const tables of g.values()) expect(tables).not.toContain(stateTableName('', other));
  });
});

describe.each([
  { svc: 'interface', sends: 'interface-to-app', receives: 'app-to-interface' },
  { svc: 'app', sends: 'app-to-interface', receives: 'interface-to-app' },
] as const)('the $svc service in the large-object bucket', ({ svc, sends, receives }) => {
  const g = s3Grants(policies[svc]);
  const prefix = (queue: string): string => `arn:aws:s3:::LARGE_OBJECT_BUCKET/${queue}/*`;

  it(`writes (multipart included) and aborts uploads only under ${sends}/, reads and deletes only under ${receives}/`, () => {
    expect([...g.keys()].sort()).toEqual(['s3:AbortMultipartUpload', 's3:DeleteObject', 's3:GetObject', 's3:PutObject']);
    expect(g.get('s3:PutObject')).toEqual([prefix(sends)]);
    expect(g.get('s3:AbortMultipartUpload')).toEqual([prefix(sends)]);
    expect(g.get('s3:GetObject')).toEqual([prefix(receives)]);
    expect(g.get('s3:DeleteObject')).toEqual([prefix(receives)]);
  });

  it('cannot list, configure or delete the bucket', () => {
    for (const resources of g.values()) expect(resources).not.toContain('arn:aws:s3:::LARGE_OBJECT_BUCKET');
  });
});

describe('the bootstrap policy (`care-relay queues init`) in S3', () => {
  it('may create the bucket, block public access and set the lifecycle rule, and touch no object', () => {
    const g = s3Grants(policies.bootstrap);
    expect([...g.keys()].sort()).toEqual(['s3:CreateBucket', 's3:PutBucketPublicAccessBlock', 's3:PutLifecycleConfiguration']);
    for (const resources of g.values()) expect(resources).toEqual(['arn:aws:s3:::LARGE_OBJECT_BUCKET']);
  });
});

describe('the bootstrap policy (`care-relay queues init`) in DynamoDB', () => {
  it('may create, describe and set TTL on both state tables, and nothing else in DynamoDB', () => {
    const g = tableGrants(policies.bootstrap);
    expect([...g.keys()].sort()).toEqual(['dynamodb:CreateTable', 'dynamodb:DescribeTable', 'dynamodb:UpdateTimeToLive']);
    for (const tables of g.values()) expect(tables).toEqual(STATE_SERVICES.map((s) => stateTableName('', s)).sort());
  });
});

describe('the bootstrap policy (`care-relay queues init`)', () => {
  const g = grants(policies.bootstrap);

  it('may create every queue the definitions hold, and read the ARN of each redrive target and main queue, nothing more', () => {
    expect(on(g, 'CreateQueue')).toEqual([...defined].sort());
    expect(on(g, 'GetQueueAttributes')).toEqual([...defined].filter((q) => !q.endsWith('-quarantine')).sort());
    expect([...g.keys()].sort()).toEqual(['CreateQueue', 'GetQueueAttributes']);
    expect(defined.size).toBe(LOGICAL_QUEUES.length * 3);
  });

  it('can neither read nor write messages, nor delete queues', () => {
    for (const action of [...messageActions, 'DeleteQueue']) expect(g.has(action), action).toBe(false);
  });
});

describe('KMS statements documented in docs/deploy.md', () => {
  const blocks = [...read('docs/deploy.md').matchAll(/```json\n([\s\S]*?)```/g)].map((m) => m[1]!).filter((b) => b.includes('"kms:'));
  const statements = blocks.flatMap((b) => {
    const parsed = JSON.parse(b) as Statement | Policy;
    return 'Statement' in parsed ? parsed.Statement : [parsed];
  });

  it('lets the services use the queue key only through SQS, and the audit archive key only through S3 to write (kms:ViaService)', () => {
    const usage = statements.filter((st) => list(st.Action).some((a) => a === 'kms:GenerateDataKey' || a === 'kms:Decrypt'));
    const viaService = (st: Statement): string | undefined => (st.Condition as { StringEquals?: Record<string, string> } | undefined)?.StringEquals?.['kms:ViaService'];
    const queueKey = usage.filter((st) => viaService(st) !== 's3.REGION.amazonaws.com');
    expect(queueKey.length, 'the identity statement and the key policy statement').toBeGreaterThanOrEqual(2);
    for (const st of queueKey) {
      expect(viaService(st), st.Sid).toBe('sqs.REGION.amazonaws.com');
      for (const a of list(st.Action)) expect(['kms:GenerateDataKey', 'kms:Decrypt'], st.Sid).toContain(a);
    }
    const archiveKey = usage.filter((st) => viaService(st) === 's3.REGION.amazonaws.com');
    expect(archiveKey.map((st) => st.Sid)).toEqual(['AuditArchiveKmsKey']);
    expect(list(archiveKey[0]!.Action), 'uploads need a data key; the services never read the archive').toEqual(['kms:GenerateDataKey']);
  });

  it('documents a key policy and how queues init sets the key', () => {
    expect(blocks.some((b) => b.includes('"Principal"'))).toBe(true);
    expect(read('docs/deploy.md')).toContain('queues init --prefix prod- --kms-key');
  });
});

describe('the alerts topic (SNS)', () => {
  const snsActions = (policy: Policy): string[] => policy.Statement.filter(isSns).flatMap((st) => list(st.Action)).sort();

  it('each service may only publish to it; queues init may only create it', () => {
    expect(snsActions(policies.interface)).toEqual(['sns:Publish']);
    expect(snsActions(policies.app)).toEqual(['sns:Publish']);
    expect(snsActions(policies.bootstrap)).toEqual(['sns:CreateTopic']);
  });

  it('each service may read the depth of exactly the queues it consumes, with their DLQ and quarantine queue (the alerts)', () => {
    expect(on(grants(policies.interface), 'GetQueueAttributes')).toEqual([...family('app-to-interface'), ...family('interface-partner-callbacks')].sort());
    expect(on(grants(policies.app), 'GetQueueAttributes')).toEqual([...family('interface-to-app'), ...family('app-sms-redaction')].sort());
  });
});

describe('the audit archive (S3)', () => {
  const s3Statements = (policy: Policy): Statement[] => policy.Statement.filter((st) => isS3(st) && list(st.Resource).every((r) => AUDIT_ARN.test(r)));

  it.each(['interface', 'app'] as const)('%s may only put objects (no read, delete, list or retention change), under its own segments/ and checkpoints/ prefixes', (svc) => {
    const sts = s3Statements(policies[svc]);
    expect(sts.flatMap((st) => list(st.Action))).toEqual(['s3:PutObject']);
    expect(sts.flatMap((st) => list(st.Resource)).sort()).toEqual([`arn:aws:s3:::AUDIT_BUCKET/checkpoints/${svc}/*`, `arn:aws:s3:::AUDIT_BUCKET/segments/${svc}/*`]);
  });

  it('the keys the code writes fall under those prefixes; the bootstrap has no access to the audit bucket', () => {
    const location = parseS3Uri('s3://audit-bucket/segments')!;
    const key = segmentObjectKey(location, 'app', { path: 'x', first: 1, last: 9, hashPrefix: 'a'.repeat(12) });
    const granted = s3Statements(policies.app).flatMap((st) => list(st.Resource)).map((r) => new RegExp(`^${r.replace('arn:aws:s3:::AUDIT_BUCKET/', '').replace('*', '.+')}$`));
    expect(granted.some((g) => g.test(key)), key).toBe(true);
    const checkpointKey = checkpointObjectKey(parseS3Uri('s3://audit-bucket/checkpoints')!, { checkpoint: { service: 'app', seq: 1, headHash: 'b'.repeat(64), at: '2026-01-01T00:00:00.000Z' }, signer: 'C'.repeat(40), signature: 'x' });
    expect(granted.some((g) => g.test(checkpointKey)), checkpointKey).toBe(true);
    expect(s3Statements(policies.bootstrap)).toEqual([]);
  });

  it('is documented in docs/deploy.md with the bucket settings: Object Lock in compliance mode, six years, SSE-KMS', () => {
    const doc = read('docs/deploy.md');
    for (const text of ['ObjectLockEnabledForBucket', '"Mode": "COMPLIANCE"', '"Years": 6', 'aws:kms', 'AUDIT_ARCHIVE_S3_URI']) expect(doc).toContain(text);
  });
});
