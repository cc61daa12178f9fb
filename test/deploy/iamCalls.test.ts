// The IAM policies grant exactly what the code calls. Each party talks to the in-process
// emulator through its own recording proxy: `care-relay queues init` (the bootstrap
// policy), then the interface and app services as real processes relaying both ways, each
// quarantining a hostile message and holding records long enough to heartbeat. Every SQS
// call recorded must be allowed by that party's policy, and every action the policy grants
// must have been called. The SNS calls (the alerts topic) and the DynamoDB calls (each
// party's state tables, through a second recording proxy in front of the embedded store)
// are compared with the `sns:` and `dynamodb:` statements; KMS is checked by its own rules, and
// the `s3:` statements of the audit archive by iamArchive.test.ts.
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { APP_QUEUES } from '../../services/app/service.ts';
import { physicalQueueName } from '../../services/core/transport/queues.ts';
import { startEmrSink, type EmrSink } from '../../services/devtools/emrSink.ts';
import { INTERFACE_QUEUES } from '../../services/interface/service.ts';
import { makeServiceKeyPair } from '../helpers/keys.ts';
import { freePort, runNode, waitReady, type RunningProcess } from '../helpers/processes.ts';
import { startProxy } from '../helpers/proxy.ts';
import { writeServiceEnv } from '../helpers/serviceEnv.ts';
import { startTestSqs, type TestSqs } from '../helpers/sqs.ts';
import { waitFor } from '../helpers/wait.ts';

type Party = 'bootstrap' | 'interface' | 'app';
/** IAM authorises the batch calls by the single action. */
const actionOf = (operation: string): string => operation.replace(/Batch$/, '');

interface Statement {
  Action: string | string[];
  Resource: string | string[];
}
const list = (x: string | string[]): string[] => (Array.isArray(x) ? x : [x]);
const ARN = /^arn:aws:sqs:REGION:ACCOUNT_ID:([A-Za-z0-9_.-]+)$/;

const TABLE_ARN = /^arn:aws:dynamodb:REGION:ACCOUNT_ID:table\/([A-Za-z0-9_.-]+)$/;

/** The DynamoDB grants of a policy file: action (`dynamodb:X`) → table names. */
async function dynamoGrants(party: Party): Promise<Map<string, Set<string>>> {
  const policy = JSON.parse(await readFile(`deploy/iam/${party}-policy.json`, 'utf8')) as { Statement: Statement[] };
  const out = new Map<string, Set<string>>();
  for (const st of policy.Statement) {
    for (const action of list(st.Action).filter((a) => a.startsWith('dynamodb:'))) {
      const set = out.get(action) ?? new Set<string>();
      for (const r of list(st.Resource)) set.add(TABLE_ARN.exec(r)?.[1] ?? `not a DynamoDB table ARN: ${r}`);
      out.set(action, set);
    }
  }
  return out;
}

/** The SQS grants of a policy file: action → queue names. */
async function sqsGrants(party: Party): Promise<Map<string, Set<string>>> {
  const policy = JSON.parse(await readFile(`deploy/iam/${party}-policy.json`, 'utf8')) as { Statement: Statement[] };
  const out = new Map<string, Set<string>>();
  for (const st of policy.Statement) {
    for (const action of list(st.Action).filter((a) => a.startsWith('sqs:'))) {
      const set = out.get(action.slice(4)) ?? new Set<string>();
      for (const r of list(st.Resource)) set.add(ARN.exec(r)?.[1] ?? `not an SQS queue ARN: ${r}`);
      out.set(action.slice(4), set);
    }
  }
  return out;
}

/** A proxy in front of an emulator that records each call's operation and queue (or table) name. */
async function recordingProxy(upstream: string): Promise<{ url: string; calls: Map<string, Set<string>>; server: Server }> {
  const calls = new Map<string, Set<string>>();
  const proxy = await startProxy(upstream, (req) => {
    const target = String(req.headers['x-amz-target'] ?? '');
    // SNS (the alerts topic, same endpoint here) speaks the query protocol: `Action=...` in a form body.
    // DynamoDB speaks JSON with `X-Amz-Target: DynamoDB_20120810.<Operation>` and names the table.
    const operation = target.startsWith('AmazonSQS.')
      ? target.slice('AmazonSQS.'.length)
      : target.startsWith('DynamoDB_')
        ? `dynamodb:${target.split('.')[1] ?? 'unknown'}`
        : `sns:${new URLSearchParams(req.body.toString('utf8')).get('Action') ?? 'unknown'}`;
    let queue = '?';
    try {
      const input = JSON.parse(req.body.toString('utf8')) as { QueueUrl?: string; QueueName?: string; TableName?: string };
      queue = input.QueueName ?? input.QueueUrl?.split('/').at(-1) ?? input.TableName ?? '?';
    } catch {
      // not JSON: recorded as '?', which no policy grants
    }
    const action = actionOf(operation);
    calls.set(action, (calls.get(action) ?? new Set()).add(queue));
    return undefined;
  });
  return { url: proxy.url, calls, server: proxy.server };
}

let dir: string;
let sqs: TestSqs;
let sink: EmrSink;
const proxies = {} as Record<Party, Awaited<ReturnType<typeof recordingProxy>>>;
const dynamoProxies = {} as Record<Party, Awaited<ReturnType<typeof recordingProxy>>>;
const procs: RunningProcess[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cr-iam-calls-'));
  sqs = await startTestSqs();
  sink = await startEmrSink({});
  for (const party of ['bootstrap', 'interface', 'app'] as const) {
    proxies[party] = await recordingProxy(sqs.endpoint);
    dynamoProxies[party] = await recordingProxy(sqs.dynamodbEndpoint);
  }
}, 60_000);

afterAll(async () => {
  await Promise.all(procs.map((p) => p.stop('SIGKILL')));
  for (const p of [...Object.values(proxies), ...Object.values(dynamoProxies)]) p.server.close();
  await sink?.stop();
  await sqs?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe.runIf(!process.env.SQS_ENDPOINT)('deploy/iam policies against the SQS calls the code makes', () => {
  it('records queues init and a real run of both services (relay both ways, heartbeats, quarantine)', async () => {
    const init = runNode('services/cli/main.ts', ['queues', 'init'], { SQS_ENDPOINT: proxies.bootstrap.url, DYNAMODB_ENDPOINT: dynamoProxies.bootstrap.url, AWS_REGION: sqs.region, AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test' });
    expect(await init.exited, init.lines.join('\n')).toBe(0);

    const keys = await makeServiceKeyPair();
    const env = await writeServiceEnv(dir, { ...sqs, prefix: '' }, keys, { iface: { EMR_URL: `${sink.url}/deliveries` } });
    const urls = {} as Record<'interface' | 'app', string>;
    for (const name of ['interface', 'app'] as const) {
      const port = await freePort();
      const proc = runNode(`services/${name}/main.ts`, [], { ...(name === 'interface' ? env.iface : env.app), SQS_ENDPOINT: proxies[name].url, DYNAMODB_ENDPOINT: dynamoProxies[name].url, PORT: String(port), AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test' });
      procs.push(proc);
      urls[name] = `http://127.0.0.1:${port}`;
      await waitReady(urls[name], proc);
    }

    // A slow EMR keeps a chart update in flight across heartbeats; an unacknowledged inbox record too.
    sink.setMode({ kind: 'slow', delayMs: 5_000, count: 1 });
    const submit = await fetch(`${urls.interface}/v1/submissions`, { method: 'POST', headers: { authorization: `Bearer ${env.tokens.partner}`, 'content-type': 'application/fhir+json' }, body: '{"resourceType":"Patient","id":"iam"}' });
    expect(submit.status).toBe(202);
    const chart = await fetch(`${urls.app}/v1/chart-updates`, { method: 'POST', headers: { authorization: `Bearer ${env.tokens.writer}`, 'content-type': 'application/hl7-v2' }, body: 'MSH|^~\\&|APP|CARE|EMR|HOSP|202601011200||ORU^R01|1|P|2.5\r' });
    expect(chart.status).toBe(202);
    // Hostile messages in both directions: each consumer quarantines what it cannot open.
    const queueUrl = (name: string): string => `${sqs.endpoint}/000000000000/${name}`;
    for (const q of ['interface-to-app', 'app-to-interface']) {
      await sqs.client.send(new SendMessageCommand({ QueueUrl: queueUrl(q), MessageBody: 'not an envelope' }));
    }
    const calls = (party: Party, action: string): Set<string> => proxies[party].calls.get(action) ?? new Set();
    await waitFor(
      () =>
        ['interface', 'app'].every((p) => calls(p as Party, 'ChangeMessageVisibility').size > 0 && calls(p as Party, 'DeleteMessage').size > 0) &&
        calls('app', 'SendMessage').has('interface-to-app-quarantine') &&
        calls('interface', 'SendMessage').has('app-to-interface-quarantine'),
      { timeoutMs: 60_000, intervalMs: 250, what: 'heartbeats, deletes and quarantines on both services' },
    );
  }, 180_000);

  /** The SQS calls a party made (SNS calls, `sns:Action`, are compared on their own). */
  const sqsCalls = (party: Party): Map<string, Set<string>> => new Map([...proxies[party].calls].filter(([action]) => !action.startsWith('sns:')));
  /** The DynamoDB calls a party made (`dynamodb:Action` → tables). */
  const dynamoCalls = (party: Party): Map<string, Set<string>> => dynamoProxies[party].calls;

  for (const party of ['bootstrap', 'interface', 'app'] as const) {
    it(`${party}: every DynamoDB call made is granted, on that table`, async () => {
      const grants = await dynamoGrants(party);
      expect(dynamoCalls(party).size, `${party} reached its state table`).toBeGreaterThan(0);
      for (const [action, tables] of dynamoCalls(party)) {
        for (const t of tables) expect([...(grants.get(action) ?? [])], `${party} calls ${action} on ${t}`).toContain(t);
      }
    });
  }

  it('bootstrap: the DynamoDB actions granted are exactly the ones queues init calls, on both state tables', async () => {
    const grants = await dynamoGrants('bootstrap');
    expect([...grants.keys()].sort()).toEqual([...dynamoCalls('bootstrap').keys()].sort());
    for (const [action, tables] of dynamoCalls('bootstrap')) expect([...tables].sort(), action).toEqual(['app-state', 'interface-state']);
  });

  it('services: each checks its own table at start and writes only to it', () => {
    for (const party of ['interface', 'app'] as const) {
      expect([...(dynamoCalls(party).get('dynamodb:DescribeTable') ?? [])], party).toEqual([`${party}-state`]);
      const touched = new Set([...dynamoCalls(party).values()].flatMap((t) => [...t]));
      expect([...touched], party).toEqual([`${party}-state`]);
    }
  });

  it('bootstrap: the only SNS call, CreateTopic of the alerts topic, is the only SNS action granted', async () => {
    const policy = JSON.parse(await readFile('deploy/iam/bootstrap-policy.json', 'utf8')) as { Statement: Statement[] };
    const granted = policy.Statement.flatMap((st) => list(st.Action)).filter((a) => a.startsWith('sns:'));
    expect([...proxies.bootstrap.calls.keys()].filter((a) => a.startsWith('sns:'))).toEqual(['sns:CreateTopic']);
    expect(granted).toEqual(['sns:CreateTopic']);
  });

  for (const party of ['bootstrap', 'interface', 'app'] as const) {
    it(`${party}: every SQS call made is granted, on that queue`, async () => {
      const grants = await sqsGrants(party);
      for (const [action, queues] of sqsCalls(party)) {
        for (const q of queues) expect([...(grants.get(action) ?? [])], `${party} calls ${action} on ${q}`).toContain(q);
      }
    });

    it(`${party}: every SQS action granted is one the code calls`, async () => {
      const grants = await sqsGrants(party);
      const called = [...sqsCalls(party).keys()].sort();
      expect([...grants.keys()].sort()).toEqual(called);
    });
  }

  it('bootstrap: grants exactly the queues queues init touches, action by action', async () => {
    const grants = await sqsGrants('bootstrap');
    for (const [action, queues] of sqsCalls('bootstrap')) expect([...(grants.get(action) ?? [])].sort(), action).toEqual([...queues].sort());
  });

  it('services: GetQueueUrl is granted on exactly the queues each service resolves', async () => {
    // This run has SMS off; with SIGNALWIRE_PROJECT_ID set the app also resolves the SMS redaction queue's family.
    expect(APP_QUEUES).toContain('app-sms-redaction');
    const smsFamily = (['main', 'dlq', 'quarantine'] as const).map((role) => physicalQueueName('', 'app-sms-redaction', role));
    // The partners file of this run has no callback; with one the interface also resolves the partner callbacks queue's family.
    expect(INTERFACE_QUEUES).toContain('interface-partner-callbacks');
    const callbackFamily = (['main', 'dlq', 'quarantine'] as const).map((role) => physicalQueueName('', 'interface-partner-callbacks', role));
    const resolved = { interface: [...(proxies.interface.calls.get('GetQueueUrl') ?? []), ...callbackFamily], app: [...(proxies.app.calls.get('GetQueueUrl') ?? []), ...smsFamily] };
    for (const party of ['interface', 'app'] as const) {
      expect([...((await sqsGrants(party)).get('GetQueueUrl') ?? [])].sort(), party).toEqual([...new Set(resolved[party])].sort());
    }
  });
});
