// Chart updates through the whole relay to an EMR that takes HL7 v2 over MLLP (the demo
// sink's independent MLLP receiver): HL7 goes over MLLP, other content types keep HTTP,
// the audit line carries the ACK code, and an AR lands in the DLQ with the reason.
import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMllpSink, type MllpSink } from '../../services/devtools/mllpSink.ts';
import { startStack, type TestStack } from '../helpers/stack.ts';
import { waitFor } from '../helpers/wait.ts';

let stack: TestStack;
let mllp: MllpSink;

beforeAll(async () => {
  mllp = await startMllpSink();
  stack = await startStack({ ifaceEnv: { EMR_MLLP_URL: `mllp://127.0.0.1:${mllp.port}`, EMR_MLLP_PLAIN: 'true', EMR_MLLP_ACK_TIMEOUT_MS: '2000' } });
});
afterAll(async () => {
  await stack?.stop();
  await mllp?.stop();
});

function chartUpdate(body: string, contentType = 'application/hl7-v2') {
  return stack.app.server.inject({
    method: 'POST',
    url: '/v1/chart-updates',
    headers: { authorization: `Bearer ${stack.tokens.writer}`, 'content-type': contentType },
    payload: body,
  });
}

const hl7 = (controlId: string): string => `MSH|^~\\&|APP|CARE|EMR|HOSP|202601011200||ORU^R01|${controlId}|P|2.5\rPID|1||MRN-1||Testperson^Alvina\r`;

describe('chart updates to an MLLP EMR', () => {
  it('HL7 v2 goes over MLLP and is audited with the ACK code; FHIR keeps HTTP', async () => {
    const res = await chartUpdate(hl7('int-1'));
    expect(res.statusCode).toBe(202);
    const { id } = res.json() as { id: string };
    const delivery = await waitFor(() => mllp.deliveries.get('int-1'), { what: 'MLLP delivery' });
    expect(delivery.body.toString('utf8')).toBe(hl7('int-1'));
    expect(stack.sink.deliveries.has(id)).toBe(false);
    const audit = await waitFor(async () => {
      const lines = (await readFile(join(stack.dir, 'interface-audit.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
      return lines.find((l) => l.action === 'message.delivered' && l.resourceId === id);
    }, { what: 'delivered audit line' });
    expect(audit.details).toMatchObject({ ackCode: 'AA' });

    const fhir = await chartUpdate(JSON.stringify({ resourceType: 'Observation', status: 'final' }), 'application/fhir+json');
    const fhirId = (fhir.json() as { id: string }).id;
    await waitFor(() => stack.sink.deliveries.get(fhirId), { what: 'HTTP delivery of FHIR' });
  });

  it('AR dead-letters the chart update at once with the reason', async () => {
    mllp.setMode({ kind: 'AR', count: 1 });
    const res = await chartUpdate(hl7('int-ar'));
    const { id } = res.json() as { id: string };
    const got = await waitFor(
      async () => {
        const r = await stack.sqs.client.send(new ReceiveMessageCommand({ QueueUrl: stack.queues['app-to-interface'].dlqUrl, MessageAttributeNames: ['All'], WaitTimeSeconds: 1 }));
        return r.Messages?.find((m) => m.MessageAttributes?.['cr-envelope-id']?.StringValue === id);
      },
      { what: 'message in DLQ' },
    );
    expect(got.MessageAttributes?.['cr-reason']?.StringValue).toBe('CR_MLLP_ACK_AR');
    expect(mllp.deliveries.has('int-ar')).toBe(false);
    expect(mllp.requests.filter((r) => r.controlId === 'int-ar')).toEqual([{ controlId: 'int-ar', answer: 'AR' }]);
  });

  it('AE is retried with backoff until the EMR accepts: delivered once', async () => {
    mllp.setMode({ kind: 'AE', count: 1 });
    await chartUpdate(hl7('int-ae'));
    const delivery = await waitFor(() => mllp.deliveries.get('int-ae'), { what: 'delivery after AE', timeoutMs: 25_000 });
    expect(delivery.attempts).toBe(1);
    expect(mllp.requests.filter((r) => r.controlId === 'int-ae').map((r) => r.answer)).toEqual(['AE', 'AA']);
  });
});
