import { describe, expect, it } from 'vitest';
import { failedBatch, NO_RESULT_FOR_ENTRY, readBatchResult } from '../../../services/core/transport/batchResult.ts';

describe('readBatchResult: never assume success', () => {
  it('reads each sent id from Successful or Failed, in the order sent', () => {
    const out = readBatchResult(['a', 'b'], { Successful: [{ Id: 'b', MessageId: 'mb' }], Failed: [{ Id: 'a', Code: 'InternalError', SenderFault: false }] });
    expect(out).toEqual([{ ok: false, code: 'InternalError', retryable: true }, { ok: true, messageId: 'mb' }]);
  });

  it('an entry in both lists is failed', () => {
    const out = readBatchResult(['a'], { Successful: [{ Id: 'a', MessageId: 'm' }], Failed: [{ Id: 'a', Code: 'InternalError' }] });
    expect(out).toEqual([{ ok: false, code: 'InternalError', retryable: true }]);
  });

  it('an entry in neither list is failed and retryable; an empty or missing answer fails every entry', () => {
    expect(readBatchResult(['a', 'b'], { Successful: [{ Id: 'a' }] })).toEqual([{ ok: true }, { ok: false, code: NO_RESULT_FOR_ENTRY, retryable: true }]);
    expect(readBatchResult(['a'], undefined)).toEqual([{ ok: false, code: NO_RESULT_FOR_ENTRY, retryable: true }]);
    expect(readBatchResult(['a'], {})).toEqual([{ ok: false, code: NO_RESULT_FOR_ENTRY, retryable: true }]);
  });

  it('ignores ids it did not send (and entries without an id): they cannot stand in for a sent one', () => {
    const out = readBatchResult(['a'], { Successful: [{ Id: 'zz', MessageId: 'm' }, { MessageId: 'n' }], Failed: [{ Id: 'yy', Code: 'X' }] });
    expect(out).toEqual([{ ok: false, code: NO_RESULT_FOR_ENTRY, retryable: true }]);
  });

  it('the first failure of an entry listed twice in Failed is kept', () => {
    const out = readBatchResult(['a'], { Failed: [{ Id: 'a', Code: 'First', SenderFault: true }, { Id: 'a', Code: 'Second', SenderFault: false }] });
    expect(out).toEqual([{ ok: false, code: 'First', retryable: false }]);
  });

  it('SenderFault true is permanent, false or absent is retryable; a failure without a code is "unknown"', () => {
    const out = readBatchResult(['a', 'b', 'c'], {
      Failed: [{ Id: 'a', Code: 'InvalidParameterValue', SenderFault: true }, { Id: 'b', Code: 'ServiceUnavailable', SenderFault: false }, { Id: 'c' }],
    });
    expect(out).toEqual([
      { ok: false, code: 'InvalidParameterValue', retryable: false },
      { ok: false, code: 'ServiceUnavailable', retryable: true },
      { ok: false, code: 'unknown', retryable: true },
    ]);
  });

  it('throttling codes are retryable even when marked as the sender\'s fault', () => {
    const codes = ['ThrottlingException', 'RequestThrottled', 'KmsThrottled', 'OverLimit'];
    const out = readBatchResult(codes, { Failed: codes.map((Code) => ({ Id: Code, Code, SenderFault: true })) });
    expect(out.every((o) => !o.ok && o.retryable)).toBe(true);
  });

  it('permanent codes (a stale receipt handle) are never retryable, whatever the fault', () => {
    const out = readBatchResult(['a'], { Failed: [{ Id: 'a', Code: 'ReceiptHandleIsInvalid', SenderFault: false }] }, /ReceiptHandleIsInvalid/);
    expect(out).toEqual([{ ok: false, code: 'ReceiptHandleIsInvalid', retryable: false }]);
  });
});

describe('failedBatch: a batch call that failed as a whole', () => {
  it('fails every entry with the error code; retryable unless the request itself is wrong', () => {
    expect(failedBatch(2, Object.assign(new Error('down'), { name: 'ServiceUnavailable', $fault: 'server' }))).toEqual([
      { ok: false, code: 'ServiceUnavailable', retryable: true },
      { ok: false, code: 'ServiceUnavailable', retryable: true },
    ]);
    expect(failedBatch(1, Object.assign(new Error('bad'), { name: 'InvalidAddress', $fault: 'client' }))).toEqual([{ ok: false, code: 'InvalidAddress', retryable: false }]);
    expect(failedBatch(1, Object.assign(new Error('slow'), { name: 'ThrottlingException', $fault: 'client' }))).toEqual([{ ok: false, code: 'ThrottlingException', retryable: true }]);
  });
});
