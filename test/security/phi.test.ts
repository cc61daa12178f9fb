import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import type { InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildEnvelope } from '../../services/core/envelope/envelope.ts';
import { seal } from '../../services/core/envelope/seal.ts';
import { stringAttribute } from '../../services/core/transport/attributes.ts';
import { signCallback } from '../../services/devtools/signalwire/index.ts';
import { waitFor } from '../helpers/wait.ts';
import { auditFiles, bearer, readAudit, startSmsStack, type SmsStack } from './helpers.ts';

// Recognisable, made-up PHI planted through every input path.
const NAME = 'Zebulon Quatermaine';
const MRN = 'MRN-88231177';
const DOB = '1961-04-17';
const PHONE = '+15557654321';
const SSN = '078-05-1120';
/** What must never appear in a log or audit line, also in fragments and encodings. */
const NEEDLES = ['Zebulon', 'Quatermaine', '88231177', DOB, '19610417', '5557654321', SSN, '078051120'];

const FHIR = JSON.stringify({
  resourceType: 'Patient',
  identifier: [{ system: 'urn:mrn', value: MRN }, { system: 'http://hl7.org/fhir/sid/us-ssn', value: SSN }],
  name: [{ text: NAME, family: 'Quatermaine', given: ['Zebulon'] }],
  birthDate: DOB,
  telecom: [{ system: 'phone', value: PHONE }],
});
const HL7 = `MSH|^~\\&|LAB|CARE|EMR|HOSP|202601011200||ADT^A08|1|P|2.5\rPID|1||${MRN}||Quatermaine^Zebulon||19610417|M|||||${PHONE}|||||||${SSN}\r`;
const CDA = `<?xml version="1.0"?><ClinicalDocument xmlns="urn:hl7-org:v3"><recordTarget><patientRole><id extension="${MRN}"/><patient><name>${NAME}</name><birthTime value="19610417"/></patient></patientRole></recordTarget></ClinicalDocument>`;

let world: SmsStack;

beforeAll(async () => {
  world = await startSmsStack();
  // Both services as verbose as they go: fastify's request loggers at trace, the service loggers at debug.
  world.stack.iface.server.log.level = 'trace';
  world.stack.app.server.log.level = 'trace';
});
afterAll(async () => {
  await world?.stop();
});

describe('no PHI in logs or audit lines', () => {
  it('plants PHI through every input path, then finds none of it in any log line of either service or any audit line', async () => {
    const { iface, app, tokens, sqs, queues, keys, sink } = world.stack;
    const toIface = (o: InjectOptions) => iface.server.inject(o);
    const toApp = (o: InjectOptions) => app.server.inject(o);
    const phiHeaders = { 'user-agent': `EHR/1.0 (${NAME})`, referer: `https://ehr.example/patients/${MRN}`, 'x-patient': `${NAME} ${DOB}` };
    const partner = { ...bearer(tokens.partner), ...phiHeaders };

    // Submissions of each content type (and aliases), with PHI in the Idempotency-Key too.
    const ids: string[] = [];
    for (const [type, payload] of [
      ['application/fhir+json', FHIR],
      ['application/json+fhir', FHIR],
      ['application/hl7-v2', HL7],
      ['x-application/hl7-v2+er7', HL7],
      ['application/xml', CDA],
      ['application/cda+xml', CDA],
    ] as const) {
      const res = await toIface({ method: 'POST', url: '/v1/submissions', headers: { ...partner, 'content-type': type, 'idempotency-key': `${MRN}-${type}` }, payload });
      expect(res.statusCode, res.body).toBe(202);
      ids.push(res.json<{ id: string }>().id);
    }
    // Malformed submissions and error paths: 400, 401, 403, 409, 413, 415.
    const errors: Array<[InjectOptions, number]> = [
      [{ method: 'POST', url: '/v1/submissions', headers: { ...partner, 'content-type': 'application/fhir+json' }, payload: `{"name": "${NAME}", ${MRN}` }, 400],
      [{ method: 'POST', url: '/v1/submissions', headers: { ...partner, 'content-type': 'application/fhir+json' }, payload: JSON.stringify({ name: NAME, mrn: MRN }) }, 400],
      [{ method: 'POST', url: '/v1/submissions', headers: { ...partner, 'content-type': 'application/hl7-v2' }, payload: `PID|1||${MRN}||${NAME}` }, 400],
      [{ method: 'POST', url: '/v1/submissions', headers: { ...partner, 'content-type': 'application/xml' }, payload: `<!DOCTYPE x [<!ENTITY n "${NAME}">]><x>&n;${SSN}</x>` }, 400],
      [{ method: 'POST', url: '/v1/submissions', headers: { ...partner, 'content-type': 'application/fhir+json', 'idempotency-key': `${NAME} ${DOB}` }, payload: FHIR }, 400],
      [{ method: 'POST', url: '/v1/submissions', headers: { ...partner, 'content-type': 'application/fhir+json', 'idempotency-key': `${MRN}-application/fhir+json` }, payload: FHIR.replace(DOB, '1961-04-18') }, 409],
      [{ method: 'POST', url: '/v1/submissions', headers: { authorization: `Bearer ${MRN}-${SSN}`, 'content-type': 'application/fhir+json' }, payload: FHIR }, 401],
      [{ method: 'POST', url: '/v1/submissions', headers: { authorization: `Basic ${Buffer.from(`${NAME}:${SSN}`).toString('base64')}`, 'content-type': 'application/fhir+json' }, payload: FHIR }, 401],
      [{ method: 'POST', url: `/v1/submissions?patient=${MRN}&dob=${DOB}`, headers: { ...partner, 'content-type': `text/${MRN}` }, payload: FHIR }, 415],
      [{ method: 'POST', url: '/v1/submissions', headers: { ...partner, 'content-type': 'application/fhir+json' }, payload: FHIR.replace('"Patient"', `"Patient","pad":"${NAME.repeat(60_000)}"`) }, 413],
      [{ method: 'GET', url: `/v1/patients/${MRN}/${encodeURIComponent(NAME)}?ssn=${SSN}`, headers: partner }, 404],
      [{ method: 'PUT', url: '/v1/admin/emergency', headers: { ...bearer(tokens.admin), 'content-type': 'application/json' }, payload: `{"active": "${NAME}" ${SSN}` }, 400],
    ];
    for (const [options, status] of errors) expect((await toIface(options)).statusCode, String(options.url)).toBe(status);

    // Inbox reads: list, read each record, PHI in the path and query, then ack.
    for (const id of ids) await waitFor(() => app.inbox.get(id), { what: 'record in inbox' });
    const reader = { ...bearer(tokens.reader), ...phiHeaders };
    expect((await toApp({ method: 'GET', url: '/v1/inbox', headers: reader })).statusCode).toBe(200);
    expect((await toApp({ method: 'GET', url: `/v1/inbox?after=${MRN}`, headers: reader })).statusCode).toBe(400);
    expect((await toApp({ method: 'GET', url: `/v1/inbox/${MRN}`, headers: reader })).statusCode).toBe(400);
    expect((await toApp({ method: 'POST', url: `/v1/inbox/${encodeURIComponent(NAME)}/ack`, headers: reader })).statusCode).toBe(400);
    for (const id of ids) {
      const read = await toApp({ method: 'GET', url: `/v1/inbox/${id}`, headers: reader });
      expect(read.body).toMatch(/Quatermaine/);
      expect((await toApp({ method: 'POST', url: `/v1/inbox/${id}/ack`, headers: reader })).statusCode).toBe(200);
    }

    // Chart updates, good and bad.
    const writer = { ...bearer(tokens.writer), ...phiHeaders };
    const chart = await toApp({ method: 'POST', url: '/v1/chart-updates', headers: { ...writer, 'content-type': 'application/hl7-v2', 'idempotency-key': MRN }, payload: HL7 });
    expect(chart.statusCode).toBe(202);
    expect((await toApp({ method: 'POST', url: '/v1/chart-updates', headers: { ...writer, 'content-type': 'application/fhir+json' }, payload: `{${NAME}` })).statusCode).toBe(400);
    await waitFor(() => sink.deliveries.get(chart.json<{ id: string }>().id), { what: 'chart update delivered' });

    // SMS: a good send, invalid numbers and bodies.
    const messenger = { ...bearer(tokens.messenger), ...phiHeaders };
    const sms = await toApp({ method: 'POST', url: '/v1/messages', headers: messenger, payload: { to: PHONE, body: `Hi ${NAME}, MRN ${MRN}, DOB ${DOB}: results ready` } });
    expect(sms.statusCode, sms.body).toBe(202);
    const sid = sms.json<{ sid: string }>().sid;
    expect((await toApp({ method: 'POST', url: '/v1/messages', headers: messenger, payload: { to: PHONE.slice(1), body: NAME } })).statusCode).toBe(400);
    expect((await toApp({ method: 'POST', url: '/v1/messages', headers: messenger, payload: { to: `${PHONE}99999999`, body: NAME } })).statusCode).toBe(400);
    expect((await toApp({ method: 'POST', url: '/v1/messages', headers: messenger, payload: { to: PHONE, body: NAME, mediaUrls: [`ftp://x/${MRN}`] } })).statusCode).toBe(400);
    expect((await toApp({ method: 'POST', url: '/v1/messages', headers: { ...messenger, 'content-type': 'application/json' }, payload: `{"to": "${PHONE}", "body": "${NAME}"` })).statusCode).toBe(400);

    // Webhooks: forged, unsigned, signed but invalid; the real signed callbacks from the fake carry Body and To.
    const hookUrl = `${world.appUrl}/webhooks/signalwire/message-status`;
    const form = (params: Record<string, string>) => new URLSearchParams(params).toString();
    const phiParams = { MessageSid: sid, MessageStatus: 'delivered', Body: `Hi ${NAME} ${SSN}`, To: PHONE, From: PHONE };
    const hook = (headers: Record<string, string>, params: Record<string, string>) =>
      fetch(hookUrl, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: form(params) });
    expect((await hook({ 'x-signalwire-signature': 'forged' }, phiParams)).status).toBe(403);
    expect((await hook({}, phiParams)).status).toBe(403);
    const invalid = { Body: `${NAME} ${DOB}`, To: PHONE };
    expect((await hook({ 'x-signalwire-signature': signCallback(world.fake.signingKey, hookUrl, invalid) }, invalid)).status).toBe(400);
    await waitFor(() => world.fake.message(sid)?.body === '', { what: 'sms redacted' });

    // Quarantined messages: a sealed envelope for the wrong queue, and a non-OpenPGP body full of PHI.
    const wrongQueue = buildEnvelope({ kind: 'care.submission', from: 'interface', to: 'app', queue: 'app-to-interface', contentType: 'application/fhir+json', body: FHIR, partner: 'acme-health' });
    const sealed = await seal(wrongQueue, keys.interface.own, keys.interface.peers);
    await sqs.client.send(new SendMessageCommand({ QueueUrl: queues['interface-to-app'].url, MessageBody: sealed.body, MessageAttributes: sealed.attributes }));
    const garbageId = randomUUID();
    await sqs.client.send(
      new SendMessageCommand({
        QueueUrl: queues['interface-to-app'].url,
        MessageBody: `${NAME} ${MRN} ${DOB} ${PHONE} ${SSN}`,
        MessageAttributes: { 'cr-version': stringAttribute('1'), 'cr-envelope-id': stringAttribute(garbageId), 'cr-signer': stringAttribute(MRN) },
      }),
    );
    const files = auditFiles(world.stack);
    await waitFor(
      async () => {
        const lines = await readAudit(files.app);
        return [wrongQueue.id, garbageId].every((id) => lines.some((l) => l.action === 'message.quarantined' && l.resourceId === id));
      },
      { what: 'both messages quarantined' },
    );
    await waitFor(async () => (await readAudit(files.app)).some((l) => l.action === 'sms.redacted'), { what: 'redaction audited' });

    // Now look: every log line of both services, and both audit trails.
    const logText = [...world.stack.logs.iface.lines, ...world.stack.logs.app.lines];
    expect(logText.length).toBeGreaterThan(50);
    expect(logText.some((l) => l.includes('"level":20'))).toBe(true);
    const auditText = (await readFile(files.iface, 'utf8')) + (await readFile(files.app, 'utf8'));
    const leaks: string[] = [];
    for (const needle of NEEDLES) {
      for (const line of logText) if (line.includes(needle)) leaks.push(`log: ${needle}: ${line.slice(0, 300)}`);
      if (auditText.includes(needle)) leaks.push(`audit: ${needle}`);
    }
    expect(leaks).toEqual([]);
  });
});
