import type { FakeMessage } from './store.ts';
import { signCallback, type FormParams } from './signature.ts';

/** One status callback the fake made (or dropped, or holds). */
export interface CallbackRecord {
  /** The StatusCallback URL, credentials removed. */
  url: string;
  /** The form parameters, as signed. */
  params: Record<string, string>;
  /** The X-SignalWire-Signature sent. */
  signature: string;
  /** Whether Basic Auth credentials from the URL were sent. */
  basicAuth: boolean;
  /** The Authorization header sent (from credentials in the URL). */
  authorization?: string;
  /** HTTP status of the webhook's answer; 0 on a network error; undefined while pending or dropped. */
  responseStatus?: number;
  /** True when a control dropped it. */
  dropped?: boolean;
}

/** Controls over status callbacks: hold and release (in any order), drop, repeat. */
export class CallbackSender {
  /** Every callback made (after it was answered), dropped or not. */
  readonly sent: CallbackRecord[] = [];
  /** Callbacks held back while `hold` is on. */
  readonly pending: CallbackRecord[] = [];
  /** When true, callbacks wait in `pending` until `release()`. */
  holding = false;
  /** Each callback is posted this many times. */
  repeat = 1;
  private dropCount = 0;
  private dropWhen: ((r: CallbackRecord) => boolean) | undefined;
  private readonly inFlight = new Set<Promise<void>>();
  private readonly signingKey: string;

  constructor(signingKey: string) {
    this.signingKey = signingKey;
  }

  /** Drops the next `n` callbacks (lost in transit). */
  dropNext(n: number): void {
    this.dropCount += n;
  }

  /** Drops every callback matching `predicate` until cleared with `undefined`. */
  dropWhere(predicate: ((r: CallbackRecord) => boolean) | undefined): void {
    this.dropWhen = predicate;
  }

  /** Called by the lifecycle on each status change: snapshots, signs and posts (or holds, drops). */
  notify(msg: FakeMessage): void {
    if (!msg.statusCallback) return;
    const target = new URL(msg.statusCallback);
    const user = decodeURIComponent(target.username);
    const pass = decodeURIComponent(target.password);
    target.username = '';
    target.password = '';
    const url = target.toString();
    const params: Record<string, string> = {
      AccountSid: msg.accountSid,
      ApiVersion: '2010-04-01',
      Body: msg.body,
      From: msg.from,
      MessageSid: msg.sid,
      MessageStatus: msg.status,
      NumMedia: String(msg.numMedia),
      SmsSid: msg.sid,
      SmsStatus: msg.status,
      To: msg.to,
    };
    if (msg.errorCode !== null) params.ErrorCode = String(msg.errorCode);
    const record: CallbackRecord = { url, params, signature: signCallback(this.signingKey, url, params as FormParams), basicAuth: user !== '' };
    if (user !== '') record.authorization = 'Basic ' + Buffer.from(`${user}:${pass}`).toString('base64');
    if (this.dropCount > 0 || this.dropWhen?.(record)) {
      if (this.dropCount > 0) this.dropCount--;
      record.dropped = true;
      this.sent.push(record);
      return;
    }
    if (this.holding) {
      this.pending.push(record);
      return;
    }
    this.post(record);
  }

  /** Sends the held callbacks, in arrival order, reversed, or in the order `order` returns; stops holding. */
  release(order: 'fifo' | 'reverse' | ((held: CallbackRecord[]) => CallbackRecord[]) = 'fifo'): void {
    const held = this.pending.splice(0);
    const list = order === 'fifo' ? held : order === 'reverse' ? held.reverse() : order(held);
    this.holding = false;
    // Sequentially, so the chosen order is the order of arrival.
    let chain = Promise.resolve();
    for (const r of list) chain = chain.then(() => this.postOnce(r));
    this.track(chain);
  }

  /** Posts a record again (a retried or replayed callback). */
  replay(record: CallbackRecord): Promise<number> {
    const copy: CallbackRecord = { ...record, params: { ...record.params } };
    delete copy.responseStatus;
    delete copy.dropped;
    const p = this.postOnce(copy).then(() => copy.responseStatus ?? 0);
    this.track(p.then(() => undefined));
    return p;
  }

  /** Resolves when no callback is in flight. */
  async idle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  private post(record: CallbackRecord): void {
    let chain = Promise.resolve();
    for (let i = 0; i < this.repeat; i++) {
      const r = i === 0 ? record : { ...record };
      chain = chain.then(() => this.postOnce(r));
    }
    this.track(chain);
  }

  private track(p: Promise<void>): void {
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p));
  }

  private async postOnce(record: CallbackRecord): Promise<void> {
    const headers: Record<string, string> = {
      'content-type': 'application/x-www-form-urlencoded',
      'x-signalwire-signature': record.signature,
      // SignalWire sends both headers, for Twilio-compatible validators.
      'x-twilio-signature': record.signature,
      'user-agent': 'SignalWire-Fake/1.0',
    };
    if (record.authorization) headers.authorization = record.authorization;
    try {
      const res = await fetch(record.url, { method: 'POST', headers, body: new URLSearchParams(record.params).toString(), signal: AbortSignal.timeout(5000) });
      await res.arrayBuffer();
      record.responseStatus = res.status;
    } catch {
      record.responseStatus = 0;
    }
    this.sent.push(record);
  }
}
