import { ReceiveMessageCommand, SendMessageCommand, type Message } from '@aws-sdk/client-sqs';
import { decryptKey, readPrivateKey } from 'openpgp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildEnvelope } from '../../services/core/envelope/envelope.ts';
import { seal } from '../../services/core/envelope/seal.ts';
import { generateServiceKey } from '../../services/core/keys/generate.ts';
import { ownKeyring } from '../../services/core/keys/keyring.ts';
import { loadInterfaceConfig } from '../../services/interface/config.ts';
import { startInterfaceService } from '../../services/interface/service.ts';
import { captureLogger } from '../helpers/logs.ts';
import { startStack, type TestStack } from '../helpers/stack.ts';
import { readTrail } from '../helpers/trail.ts';
import { waitFor } from '../helpers/wait.ts';

const FHIR = JSON.stringify({ resourceType: 'Patient', id: 'p1', name: [{ family: 'Replayperson', given: ['Orla'] }] });

let stack: TestStack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack?.stop();
});

async function quarantined(envelopeId: string, expected: number): Promise<Message[]> {
  const found = new Map<string, Message>();
  await waitFor(
    async () => {
      const r = await stack.sqs.client.send(new ReceiveMessageCommand({ QueueUrl: stack.queues['interface-to-app'].quarantineUrl, MessageAttributeNames: ['All'], MaxNumberOfMessages: 10, WaitTimeSeconds: 1, VisibilityTimeout: 60 }));
      for (const m of r.Messages ?? []) if (m.MessageAttributes?.['cr-envelope-id']?.StringValue === envelopeId) found.set(m.MessageId!, m);
      return found.size >= expected;
    },
    { what: `${expected} quarantined copies`, timeoutMs: 20_000 },
  );
  return [...found.values()];
}

describe('exactly once across restarts and instances', () => {
  it('a captured sealed message resent after an app restart makes no second record and is audited as a duplicate', async () => {
    const envelope = buildEnvelope({ kind: 'care.submission', from: 'interface', to: 'app', queue: 'interface-to-app', contentType: 'application/fhir+json', body: FHIR });
    const captured = await seal(envelope, stack.keys.interface.own, stack.keys.interface.peers);
    const send = () => stack.sqs.client.send(new SendMessageCommand({ QueueUrl: stack.queues['interface-to-app'].url, MessageBody: captured.body, MessageAttributes: captured.attributes }));
    await send();
    await waitFor(() => stack.app.inbox.get(envelope.id), { what: 'record held' });
    expect(stack.app.inbox.ack(envelope.id)).toBe(true);
    await waitFor(() => stack.app.consumers[0]!.inFlightCount === 0, { what: 'message deleted' });

    const app = await stack.restartApp();
    await send();
    await waitFor(async () => (await readTrail(stack.env.app.AUDIT_FILE!)).some((l) => l.action === 'message.duplicate' && l.resourceId === envelope.id), { what: 'duplicate audit line' });
    await waitFor(() => app.consumers[0]!.inFlightCount === 0, { what: 'replay deleted' });
    expect(app.inbox.get(envelope.id)).toBeUndefined();
    expect(app.inbox.size).toBe(0);
  });

  it('a garbage body and an unpinned signer reusing a known envelope id are both quarantined, not taken for duplicates', async () => {
    const envelope = buildEnvelope({ kind: 'care.submission', from: 'interface', to: 'app', queue: 'interface-to-app', contentType: 'application/fhir+json', body: FHIR });
    const genuine = await seal(envelope, stack.keys.interface.own, stack.keys.interface.peers);
    const queueUrl = stack.queues['interface-to-app'].url;
    await stack.sqs.client.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: genuine.body, MessageAttributes: genuine.attributes }));
    await waitFor(() => stack.app.inbox.get(envelope.id), { what: 'genuine record held' });
    stack.app.inbox.ack(envelope.id);
    await waitFor(() => stack.app.consumers[0]!.inFlightCount === 0, { what: 'genuine message deleted' });

    // Hostile: the clear attributes of the known message on a garbage body...
    await stack.sqs.client.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: '-----BEGIN PGP MESSAGE-----\n\nnot really\n-----END PGP MESSAGE-----\n', MessageAttributes: genuine.attributes }));
    // ...and a message sealed by an unpinned key whose signed id is the known id.
    const impostorKey = await generateServiceKey({ service: 'interface', passphrase: 'impostor-pass' });
    const impostor = ownKeyring(await decryptKey({ privateKey: await readPrivateKey({ armoredKey: impostorKey.privateKey }), passphrase: 'impostor-pass' }));
    const forged = await seal({ ...envelope }, impostor, stack.keys.interface.peers);
    await stack.sqs.client.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: forged.body, MessageAttributes: forged.attributes }));

    const copies = await quarantined(envelope.id, 2);
    expect(copies.map((m) => m.MessageAttributes?.['cr-reason']?.StringValue).sort()).toEqual(['CR_ENVELOPE_NOT_OPENPGP', 'CR_ENVELOPE_SIGNER_NOT_PINNED'].sort());
    const audit = await readTrail(stack.env.app.AUDIT_FILE!);
    expect(audit.filter((l) => l.action === 'message.duplicate' && l.resourceId === envelope.id)).toEqual([]);
    expect(audit.filter((l) => l.action === 'message.quarantined' && l.resourceId === envelope.id)).toHaveLength(2);
  });

  it('an Idempotency-Key retry to a second interface instance answers the same id and makes one record; each retry answered from the claim writes its lines again, marked copy', async () => {
    const second = await startInterfaceService(loadInterfaceConfig(stack.env.iface), { logger: captureLogger('interface').logger, listen: false });
    try {
      const key = `k-${Date.now()}`;
      const post = (svc: typeof second, body: string) =>
        svc.server.inject({ method: 'POST', url: '/v1/submissions', headers: { authorization: `Bearer ${stack.tokens.partner}`, 'content-type': 'application/fhir+json', 'idempotency-key': key }, payload: body });
      const [a, b] = await Promise.all([post(stack.iface, FHIR), post(second, FHIR)]);
      expect(a.statusCode).toBe(202);
      expect(b.json().id).toBe(a.json().id);
      const c = await post(second, FHIR);
      expect(c.json().id).toBe(a.json().id);
      const conflict = await post(second, JSON.stringify({ resourceType: 'Patient', id: 'other' }));
      expect(conflict.statusCode).toBe(409);
      const id = a.json().id as string;
      await waitFor(() => stack.app.inbox.get(id), { what: 'record held' });
      expect(stack.app.inbox.list().filter((r) => r.id === id)).toHaveLength(1);
      // One send, one pair of lines; the two retries answered from the claim (one of the concurrent pair, and c) each
      // wrote them again with copy: true (the request that sent may have stopped before its lines).
      const trail = (await readTrail(stack.env.iface.AUDIT_FILE!)).filter((l) => l.resourceId === id && (l.action === 'message.relayed' || l.action === 'submission.accepted'));
      const copy = (l: (typeof trail)[number]): boolean => (l.details as { copy?: boolean } | undefined)?.copy === true;
      expect(trail.filter((l) => !copy(l)).map((l) => l.action).sort()).toEqual(['message.relayed', 'submission.accepted']);
      expect(trail.filter(copy).map((l) => l.action).sort()).toEqual(['message.relayed', 'message.relayed', 'submission.accepted', 'submission.accepted']);
      expect(trail.find((l) => copy(l) && l.action === 'submission.accepted')!.details).toMatchObject({ contentType: 'application/fhir+json', bytes: Buffer.byteLength(FHIR), copy: true });
      stack.app.inbox.ack(id);
    } finally {
      await second.stop();
    }
  });
});
