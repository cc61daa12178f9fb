import { SendMessageCommand } from '@aws-sdk/client-sqs';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildEnvelope } from '../../services/core/envelope/envelope.ts';
import { seal } from '../../services/core/envelope/seal.ts';
import { stringAttribute } from '../../services/core/transport/attributes.ts';
import { postForm, postSignIn, signIn, type ConsoleClient } from '../helpers/console.ts';
import { startStack, type TestStack } from '../helpers/stack.ts';
import { waitFor } from '../helpers/wait.ts';

// Recognisable, made-up PHI planted in every place the console reads from.
const NAME = 'Zebulon Quatermaine';
const MRN = 'MRN-88231177';
const DOB = '1961-04-17';
const SSN = '078-05-1120';
const NEEDLES = ['Zebulon', 'Quatermaine', '88231177', DOB, '19610417', SSN, '078051120'];
const FHIR = JSON.stringify({ resourceType: 'Patient', identifier: [{ value: MRN }], name: [{ text: NAME }], birthDate: DOB, ssn: SSN });

let stack: TestStack;

beforeAll(async () => {
  stack = await startStack({ ifaceEnv: { CONSOLE_SAMPLE_SECONDS: '1' }, appEnv: { CONSOLE_SAMPLE_SECONDS: '1' } });
}, 180_000);
afterAll(async () => {
  await stack?.stop();
});

/** Every page and JSON answer of one service's console, as the signed-in admin sees them. */
async function everyAnswer(server: FastifyInstance, client: ConsoleClient, queue: string): Promise<string[]> {
  const get = async (url: string): Promise<string> => (await server.inject({ method: 'GET', url, headers: { cookie: client.cookie } })).body;
  const bodies = [
    await get('/console'),
    await get('/console/api/overview'),
    await get('/console/api/session'),
    await get('/console/dlq'),
    await get('/console/quarantine'),
    await get('/console/audit'),
    await get('/console/emergency?to=on'),
    await get(`/console/login?ended=${encodeURIComponent(NAME)}`),
  ];
  for (const role of ['dlq', 'quarantine']) {
    bodies.push((await postForm(server, client, `/console/held/${role}/${queue}`, { action: 'redrive' })).body);
    bodies.push((await postForm(server, client, `/console/held/${role}/${queue}`, { action: 'purge', reason: MRN })).body);
    bodies.push((await postForm(server, client, `/console/held/${role}/${queue}`, { action: 'purge', ids: MRN })).body);
  }
  return bodies;
}

describe('no PHI on any console page or JSON answer', () => {
  it('plants PHI in submissions, inbox records, quarantined and dead-lettered messages, clear attributes and sign-in attempts; finds none of it in the console', async () => {
    const { iface, app, tokens, sqs, queues, keys } = stack;
    // A submission held in the app's inbox.
    const submitted = await iface.server.inject({ method: 'POST', url: '/v1/submissions', headers: { authorization: `Bearer ${tokens.partner}`, 'content-type': 'application/fhir+json', 'idempotency-key': MRN }, payload: FHIR });
    expect(submitted.statusCode).toBe(202);
    // A tampered message whose body and clear attributes are PHI: quarantined by the app.
    await sqs.client.send(
      new SendMessageCommand({
        QueueUrl: queues['interface-to-app'].url,
        MessageBody: `${NAME} ${MRN} ${DOB} ${SSN}`,
        MessageAttributes: { 'cr-version': stringAttribute('1'), 'cr-envelope-id': stringAttribute(MRN), 'cr-signer': stringAttribute(SSN) },
      }),
    );
    // Dead-lettered chart updates carrying PHI: one sealed, one in the clear with a forged reason attribute.
    const sealed = await seal(buildEnvelope({ kind: 'chart.update', from: 'app', to: 'interface', queue: 'app-to-interface', contentType: 'application/fhir+json', body: FHIR }), keys.app.own, keys.app.peers);
    await sqs.client.send(new SendMessageCommand({ QueueUrl: queues['app-to-interface'].dlqUrl, MessageBody: sealed.body, MessageAttributes: sealed.attributes }));
    await sqs.client.send(new SendMessageCommand({ QueueUrl: queues['app-to-interface'].dlqUrl, MessageBody: FHIR, MessageAttributes: { 'cr-reason': stringAttribute(MRN), 'cr-envelope-id': stringAttribute(`${NAME}`) } }));
    // Sign-in attempts with PHI as the credential.
    for (const server of [iface.server, app.server]) expect((await postSignIn(server, `${NAME} ${SSN}`)).statusCode).toBe(401);

    await waitFor(() => app.inbox.size >= 1, { timeoutMs: 30_000, what: 'the submission in the inbox' });
    await waitFor(async () => (await app.runtime.metrics.transport.quarantined.get()).values.some((v) => v.value > 0), { timeoutMs: 30_000, what: 'the tampered message quarantined' });

    const ifaceClient = await signIn(iface.server, tokens.admin);
    const appClient = await signIn(app.server, tokens.admin);
    const bodies = [...(await everyAnswer(iface.server, ifaceClient, 'app-to-interface')), ...(await everyAnswer(app.server, appClient, 'interface-to-app'))];
    // The pages did show what they are for (so the check below looks at real content).
    const all = bodies.join('\n');
    expect(all).toContain('CR_TRANSPORT_ENVELOPE_ID_INVALID');
    expect(all).toContain('CR_REASON_INVALID');
    expect(all).toContain('id="inbox"');
    for (const needle of NEEDLES) {
      const at = all.indexOf(needle);
      expect(at < 0 ? '' : all.slice(Math.max(0, at - 300), at + 100), needle).toBe('');
    }
  });
});
