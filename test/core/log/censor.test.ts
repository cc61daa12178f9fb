import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { compileCensor, pathSegments } from '../../../services/core/log/censor.ts';
import { REDACT_PATHS, REDACTED, createLogger } from '../../../services/core/log/logger.ts';

/** A destination that keeps each line, parsed, without its time. */
function sink(): { stream: { write(line: string): boolean }; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  return {
    lines,
    stream: {
      write(line: string) {
        const { time: _time, ...rest } = JSON.parse(line) as Record<string, unknown>;
        lines.push(rest);
        return true;
      },
    },
  };
}

/** What the services configured before: pino's own `redact` with the same paths and censor. */
function pinoRedactLogger(destination: { write(line: string): boolean }): pino.Logger {
  return pino(
    {
      level: 'debug',
      base: { service: 'svc' },
      redact: { paths: REDACT_PATHS, censor: REDACTED },
      timestamp: pino.stdTimeFunctions.isoTime,
      serializers: { err: pino.stdSerializers.err },
    },
    destination as never,
  );
}

class WithJson {
  private readonly secretValue: string;
  constructor(secretValue: string) {
    this.secretValue = secretValue;
  }
  toJSON(): unknown {
    return { shown: 'yes', length: this.secretValue.length };
  }
}

/** Lines as callers write them, with a planted value wherever REDACT_PATHS reaches and where it does not. */
function corpus(): Array<{ bindings?: Record<string, unknown>; fields: Record<string, unknown>; msg: string }> {
  const leakyError = Object.assign(new Error('send failed'), { body: 'PHI-err-body', token: 'tok-err', code: 'E_X' });
  return [
    { fields: {}, msg: 'plain' },
    { fields: { envelopeId: '0193-abc', partner: 'p1', replayed: false, bytes: 4096 }, msg: 'flat, nothing to censor' },
    { fields: { body: 'PHI-body', payload: { name: 'Jane' }, plaintext: 'PHI-plain', to: '+15550001', from: '+15550002', phone: '+15550003' }, msg: 'top level' },
    { fields: { Body: 'PHI-Body', To: '+15550004', From: '+15550005', token: 't-1', passphrase: 'pp', password: 'pw', privateKey: 'k', armored: '-----', secret: 's' }, msg: 'top level, more' },
    { fields: { body: null, to: 0, from: false, token: undefined }, msg: 'falsy values' },
    { fields: { details: { body: 'PHI-nested', to: '+15550006', kind: 'fhir', Body: 'B', token: 't', secret: 's2', privateKey: 'pk', armored: 'a', passphrase: 'p', password: 'w', payload: 'pl', plaintext: 'pt', phone: 'ph', from: 'f' } }, msg: 'one level down' },
    { fields: { details: { inner: { body: 'depth-two-not-a-path' } } }, msg: 'two levels down' },
    { fields: { list: [{ body: 'in-an-array' }], details: [{ to: 'x' }] }, msg: 'arrays' },
    { fields: { req: { method: 'POST', url: '/v1/x', headers: { authorization: 'Bearer abc', cookie: 'c=1', 'x-signalwire-signature': 'sig', accept: '*/*' }, body: 'PHI-req-body' } }, msg: 'request' },
    { fields: { headers: { authorization: 'Bearer def', 'content-type': 'text/plain' } }, msg: 'headers' },
    { fields: { headers: 'not an object', req: 'nor this' }, msg: 'strings where objects are named' },
    { fields: { err: leakyError }, msg: 'error with planted fields' },
    { fields: { when: new Date(0), shown: new WithJson('secret-value') }, msg: 'toJSON kept' },
    { fields: { details: { to: '+15550007', note: new WithJson('x') } }, msg: 'nested toJSON next to a censored field' },
    { bindings: { reqId: 'r-1', token: 'bound-token', ctx: { body: 'bound-body', id: 7 } }, fields: { envelopeId: 'e' }, msg: 'child bindings' },
  ];
}

describe('the log redaction net (censor.ts)', () => {
  it('writes exactly the lines pino redact wrote with the same paths, for every kind of field', () => {
    const before = sink();
    const after = sink();
    const old = pinoRedactLogger(before.stream);
    const now = createLogger({ service: 'svc', level: 'debug', destination: after.stream as never });
    for (const line of corpus()) {
      for (const [logger, lines] of [
        [old, before.lines],
        [now, after.lines],
      ] as const) {
        const target = line.bindings ? logger.child(line.bindings) : logger;
        target.info(line.fields, line.msg);
        expect(lines.length).toBeGreaterThan(0);
      }
    }
    // Objects interpolated into the message, after fields and without them.
    for (const logger of [old, now]) {
      logger.info({ envelopeId: 'e' }, 'sent %j', { to: '+15550009', kind: 'sms', details: { body: 'PHI-fmt-body' } });
      logger.info('sent %o and %j', { token: 'fmt-token', n: 1 }, { secret: 'fmt-secret' });
    }
    expect(after.lines).toEqual(before.lines);
    const text = JSON.stringify(after.lines);
    for (const planted of ['PHI-', '+1555', 'Bearer', 'bound-token', 'bound-body', 'tok-err', 'c=1', '"sig"', 'fmt-token', 'fmt-secret']) expect(text).not.toContain(planted);
    // What REDACT_PATHS does not reach is written as it was: the net is for known field names.
    expect(text).toContain('depth-two-not-a-path');
    expect(text).toContain('in-an-array');
    const err = after.lines.find((l) => l.msg === 'error with planted fields')!.err as Record<string, unknown>;
    expect(err).toMatchObject({ type: 'Error', message: 'send failed', code: 'E_X', body: REDACTED, token: REDACTED });
    expect(String(err.stack)).toContain('send failed');
  });

  it('writes a Buffer as JSON does (pino redact wrote a placeholder for it)', () => {
    const out = sink();
    createLogger({ service: 'svc', level: 'debug', destination: out.stream as never }).info({ bytes: Buffer.from('hi') }, 'buffer');
    expect(out.lines[0]!.bytes).toEqual({ type: 'Buffer', data: [104, 105] });
  });

  it('never changes the object a caller logged, and copies nothing when nothing is censored', () => {
    const censor = compileCensor(REDACT_PATHS, REDACTED);
    const flat = { envelopeId: 'e', nested: { kind: 'fhir' } };
    expect(censor(flat)).toBe(flat);
    const details = { to: '+15550008', kind: 'sms' };
    const fields = { details, body: 'PHI', keep: 1 };
    const out = censor(fields);
    expect(out).toEqual({ details: { to: REDACTED, kind: 'sms' }, body: REDACTED, keep: 1 });
    expect(fields).toEqual({ details: { to: '+15550008', kind: 'sms' }, body: 'PHI', keep: 1 });
    expect(out.details).not.toBe(details);
  });

  it('censors a raw object before a serializer reads it, which keeps its prototype, getters and symbols', () => {
    const kContext = Symbol('context');
    class FakeRequest {
      body: unknown;
      [kContext]: { url: string };
      constructor(body: unknown) {
        this.body = body;
        this[kContext] = { url: '/v1/submissions' };
      }
      get routeUrl(): string {
        return this[kContext].url;
      }
    }
    const out = sink();
    const logger = createLogger({ service: 'svc', level: 'debug', destination: out.stream as never }).child(
      {},
      { serializers: { req: (req: FakeRequest) => ({ url: req.routeUrl, body: req.body, isRequest: req instanceof FakeRequest }) } },
    );
    logger.info({ req: new FakeRequest({ patient: 'Jane Doe' }) }, 'incoming request');
    expect(out.lines[0]!.req).toEqual({ url: '/v1/submissions', body: REDACTED, isRequest: true });
  });

  it('never throws into the caller: an own getter that throws is left out of the censored copy', () => {
    const out = sink();
    const value = { body: 'PHI-getter-neighbour', kind: 'x' };
    Object.defineProperty(value, 'broken', { enumerable: true, get: () => { throw new Error('no'); } });
    createLogger({ service: 'svc', level: 'debug', destination: out.stream as never }).info({ details: value }, 'getter');
    expect(out.lines[0]!.details).toEqual({ body: REDACTED, kind: 'x' });
  });

  it('reads the path forms pino takes, and refuses what it cannot parse', () => {
    expect(pathSegments('req.headers["x-signalwire-signature"]')).toEqual(['req', 'headers', 'x-signalwire-signature']);
    expect(pathSegments("a['b c'].d")).toEqual(['a', 'b c', 'd']);
    expect(pathSegments('*.body')).toEqual(['*', 'body']);
    for (const bad of ['', 'a..b', 'a[b]', 'a["b"']) expect(() => compileCensor([bad], REDACTED), bad).toThrow(/cannot be parsed/);
  });
});
