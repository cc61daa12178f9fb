import { describe, expect, it } from 'vitest';
import { rejectionReceipt } from '../../../services/app/inbox/rejections.ts';

const id = '0190b9a4-1c2d-7e3f-8a4b-5c6d7e8f9a0b';

describe('rejection receipts of the app', () => {
  it('a submission quarantined or dead-lettered gets rejected with its reason and disposition', () => {
    expect(rejectionReceipt({ id, kind: 'care.submission', reason: 'CR_ENVELOPE_WRONG_QUEUE', disposition: 'quarantined' })).toEqual({ ref: id, status: 'rejected', reasonCode: 'CR_ENVELOPE_WRONG_QUEUE', disposition: 'quarantined' });
    expect(rejectionReceipt({ id, kind: 'care.submission', reason: 'CR_ENVELOPE_EFFECT_FAILED', disposition: 'dead-lettered' })).toEqual({ ref: id, status: 'rejected', reasonCode: 'CR_ENVELOPE_EFFECT_FAILED', disposition: 'dead-lettered' });
  });

  it('a copy dead-lettered while another instance holds the original did not fail the submission: no receipt', () => {
    expect(rejectionReceipt({ id, kind: 'care.submission', reason: 'CR_INBOX_HELD_ELSEWHERE', disposition: 'dead-lettered' })).toBeUndefined();
  });

  it('a receipt or a checkpoint refused gets no receipt (receipts never trigger receipts)', () => {
    expect(rejectionReceipt({ id, kind: 'delivery.receipt', reason: 'CR_RECEIPT_INVALID', disposition: 'quarantined' })).toBeUndefined();
    expect(rejectionReceipt({ id, kind: 'audit.checkpoint', reason: 'CR_ENVELOPE_EFFECT_FAILED', disposition: 'dead-lettered' })).toBeUndefined();
  });
});
