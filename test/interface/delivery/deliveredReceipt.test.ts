// The `delivered` receipt of a chart update is not lost to a kill or to SQS refusing it: the
// message stays until the receipt is out, and a redelivered copy of a delivered update sends
// the receipt again (from the ledger), never the update.
import { describe, expect, it } from 'vitest';
import { AuditError } from '../../../services/core/audit/errors.ts';
import type { AuditEvent } from '../../../services/core/audit/types.ts';
import { buildEnvelope } from '../../../services/core/envelope/envelope.ts';
import type { Receipt } from '../../../services/core/receipts/receipt.ts';
import type { ReceiptSender } from '../../../services/core/receipts/receipts.ts';
import type { ReceivedMessage } from '../../../services/core/transport/consumerTypes.ts';
import type { EmrOutcome } from '../../../services/interface/delivery/emrClient.ts';
import { emrDeliveryEffect } from '../../../services/interface/delivery/handler.ts';
import { memoryDeliveryLedger } from '../../helpers/ledgers.ts';
import { captureLogger } from '../../helpers/logs.ts';

/** A receipt sender whose SQS refuses the next `refuse` receipts. */
function receiptsRefusing(refuse: number): Pick<ReceiptSender, 'send'> & { sent: Array<Omit<Receipt, 'at'>> } {
  const sent: Array<Omit<Receipt, 'at'>> = [];
  return {
    sent,
    async send(receipt) {
      if (refuse > 0) {
        refuse--;
        return false;
      }
      sent.push(receipt);
      return true;
    },
  };
}

/** `failWrites`: how many audit writes fail first (a trail that could not write, or a crash before the line). */
function setup(receipts: Pick<ReceiptSender, 'send'>, outcome: EmrOutcome, failWrites = 0) {
  const calls: string[] = [];
  const audit: AuditEvent[] = [];
  const ledger = memoryDeliveryLedger();
  const effect = emrDeliveryEffect({
    emr: { deliver: async (e) => (calls.push(e.id), outcome) },
    audit: {
      record: async (e) => {
        if (failWrites-- > 0) throw new AuditError('CR_AUDIT_WRITE_FAILED', 'the trail could not be written');
        audit.push(e);
      },
    },
    logger: captureLogger('interface').logger,
    ledger,
    receipts,
  });
  const envelope = buildEnvelope({ kind: 'chart.update', from: 'app', to: 'interface', queue: 'app-to-interface', contentType: 'application/fhir+json', body: '{"resourceType":"Observation"}' });
  const run = () => effect(envelope, { receiveCount: 1 } as ReceivedMessage, new AbortController().signal);
  return { calls, run, envelope, audit };
}

describe('delivered receipts', () => {
  it('a receipt SQS refused keeps the message (retry CR_RECEIPT_NOT_SENT); the retry sends the receipt, not the update', async () => {
    const receipts = receiptsRefusing(1);
    const { calls, run, envelope } = setup(receipts, { kind: 'delivered', status: 201 });
    expect(await run()).toEqual({ status: 'retry', reason: 'CR_RECEIPT_NOT_SENT' });
    expect(await run()).toEqual({ status: 'duplicate' });
    expect(calls, 'the EMR got the update once').toEqual([envelope.id]);
    expect(receipts.sent).toEqual([{ ref: envelope.id, status: 'delivered', emrStatus: 201 }]);
  });

  it('a copy of an update delivered before (the instance was killed before its receipt) sends the receipt again, with the ACK code the ledger kept', async () => {
    const receipts = receiptsRefusing(0);
    const { calls, run, envelope, audit } = setup(receipts, { kind: 'delivered', ackCode: 'AA' });
    expect(await run()).toEqual({ status: 'done' });
    expect(await run()).toEqual({ status: 'duplicate' });
    expect(calls).toEqual([envelope.id]);
    expect(receipts.sent).toEqual([
      { ref: envelope.id, status: 'delivered', ackCode: 'AA' },
      { ref: envelope.id, status: 'delivered', ackCode: 'AA' },
    ]);
    expect(audit.map((e) => [e.action, e.resourceId, e.details])).toEqual([
      ['message.delivered', envelope.id, { ackCode: 'AA', attempt: 1 }],
      ['message.delivered', envelope.id, { ackCode: 'AA', copy: true }],
    ]);
  });

  it('a delivery recorded in the ledger whose audit line was not written (a crash or a failed write between): the copy writes message.delivered, marked copy, and never posts again', async () => {
    const receipts = receiptsRefusing(0);
    const { calls, run, envelope, audit } = setup(receipts, { kind: 'delivered', status: 201 }, 1);
    await expect(run()).rejects.toThrow(AuditError);
    expect(audit).toEqual([]);
    expect(await run()).toEqual({ status: 'duplicate' });
    expect(calls, 'the EMR got the update once').toEqual([envelope.id]);
    expect(audit.map((e) => [e.action, e.resourceId, e.outcome, e.details])).toEqual([['message.delivered', envelope.id, 'success', { status: 201, copy: true }]]);
    expect(receipts.sent).toEqual([{ ref: envelope.id, status: 'delivered', emrStatus: 201 }]);
  });
});
