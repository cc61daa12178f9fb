import { randomUUID } from 'node:crypto';

/** Message statuses the fake reports (a subset of SignalWire's). */
export type FakeStatus = 'queued' | 'sending' | 'sent' | 'delivered' | 'undelivered' | 'failed' | 'received';

/** Where a message's lifecycle ends: a final status, stuck at `sent` (MMS), or `hold` (stays queued). */
export type Outcome = 'delivered' | 'undelivered' | 'failed' | 'sent' | 'hold';

/** One message as the fake holds it. */
export interface FakeMessage {
  /** Message sid (SignalWire uses UUIDs). */
  sid: string;
  /** Project id. */
  accountSid: string;
  /** Destination number. */
  to: string;
  /** Sending number. */
  from: string;
  /** Text; `''` once redacted. */
  body: string;
  /** Current status. */
  status: FakeStatus;
  /** `outbound-api` for sent messages, `inbound` for seeded received ones. */
  direction: 'outbound-api' | 'inbound';
  /** Creation time. */
  dateCreated: Date;
  /** When it was sent (null until it leaves `queued`/`sending`). */
  dateSent: Date | null;
  /** Last change. */
  dateUpdated: Date;
  /** Error code for failed/undelivered. */
  errorCode: number | null;
  /** Where status callbacks go. */
  statusCallback: string | undefined;
  /** Final outcome of its lifecycle. */
  outcome: Outcome;
  /** Creation order, used for list order and page tokens. */
  seq: number;
  /** Number of media items created at send (SignalWire keeps this count after media deletion). */
  numMedia: number;
}

/** One media item. */
export interface FakeMedia {
  /** Media sid. */
  sid: string;
  /** Its message's sid (the media outlives the message). */
  messageSid: string;
  /** Project id. */
  accountSid: string;
  /** Content type guessed from the URL. */
  contentType: string;
  /** The MediaUrl it was created from. */
  sourceUrl: string;
  /** Creation time. */
  dateCreated: Date;
}

/** Filters of a message list request. */
export interface ListFilter {
  /** `DateSent>=`: on or after. */
  sentAfter?: Date;
  /** `DateSent<=`: on or before. */
  sentBefore?: Date;
  /** `DateSent=`: that UTC day. */
  sentOn?: Date;
  /** `To=`. */
  to?: string;
  /** `From=`. */
  from?: string;
}

const IN_PROGRESS: ReadonlySet<FakeStatus> = new Set(['queued', 'sending']);

/** True while SignalWire refuses to redact or delete the message. */
export function inProgress(status: FakeStatus): boolean {
  return IN_PROGRESS.has(status);
}

function contentTypeOf(url: string): string {
  const ext = url.split('?')[0]!.split('.').pop()?.toLowerCase() ?? '';
  const types: Record<string, string> = { jpg: 'image/jpeg', jpeg: 'image/jpeg', png: 'image/png', gif: 'image/gif', pdf: 'application/pdf', mp4: 'video/mp4' };
  return types[ext] ?? 'application/octet-stream';
}

/** RFC 2822 date as the Compatibility API writes it. */
export function rfc2822(d: Date | null): string | null {
  if (!d) return null;
  return d.toUTCString().replace('GMT', '+0000');
}

/** The in-memory state of the fake space: messages and media, media kept apart so it survives message deletion. */
export class FakeStore {
  /** Live (not deleted) messages by sid. */
  readonly messages = new Map<string, FakeMessage>();
  /** Media by message sid, then media sid. */
  readonly media = new Map<string, Map<string, FakeMedia>>();
  /** Sids of deleted messages (their media may remain). */
  readonly deleted = new Set<string>();
  private seq = 0;
  private readonly now: () => Date;

  constructor(now: () => Date) {
    this.now = now;
  }

  /** Creates a message and one media item per URL. */
  create(input: { accountSid: string; to: string; from: string; body: string; mediaUrls: string[]; statusCallback?: string; outcome: Outcome; status?: FakeStatus; dateCreated?: Date; direction?: 'outbound-api' | 'inbound' }): FakeMessage {
    const created = input.dateCreated ?? this.now();
    const status = input.status ?? 'queued';
    const msg: FakeMessage = {
      sid: randomUUID(),
      accountSid: input.accountSid,
      to: input.to,
      from: input.from,
      body: input.body,
      status,
      direction: input.direction ?? 'outbound-api',
      dateCreated: created,
      dateSent: inProgress(status) ? null : created,
      dateUpdated: created,
      errorCode: status === 'failed' ? 30008 : status === 'undelivered' ? 30005 : null,
      statusCallback: input.statusCallback,
      outcome: input.outcome,
      seq: ++this.seq,
      numMedia: input.mediaUrls.length,
    };
    this.messages.set(msg.sid, msg);
    const items = new Map<string, FakeMedia>();
    for (const url of input.mediaUrls) {
      const m: FakeMedia = { sid: randomUUID(), messageSid: msg.sid, accountSid: input.accountSid, contentType: contentTypeOf(url), sourceUrl: url, dateCreated: created };
      items.set(m.sid, m);
    }
    this.media.set(msg.sid, items);
    return msg;
  }

  /** Media of a message, live or deleted, oldest first. */
  mediaOf(messageSid: string): FakeMedia[] {
    return [...(this.media.get(messageSid)?.values() ?? [])];
  }

  /** Messages matching `filter`, newest first, after the page token's position. */
  list(filter: ListFilter, afterSeq?: number): FakeMessage[] {
    const day = (d: Date) => d.toISOString().slice(0, 10);
    return [...this.messages.values()]
      .filter((m) => {
        const sent = m.dateSent ?? m.dateCreated;
        if (filter.sentAfter && sent < filter.sentAfter) return false;
        if (filter.sentBefore && sent > filter.sentBefore) return false;
        if (filter.sentOn && day(sent) !== day(filter.sentOn)) return false;
        if (filter.to && m.to !== filter.to) return false;
        if (filter.from && m.from !== filter.from) return false;
        return afterSeq === undefined || m.seq < afterSeq;
      })
      .sort((a, b) => b.seq - a.seq);
  }

  /** The message's JSON as SignalWire returns it. */
  messageJson(m: FakeMessage, prefix: string): Record<string, unknown> {
    const base = `${prefix}/2010-04-01/Accounts/${m.accountSid}/Messages/${m.sid}`;
    return {
      account_sid: m.accountSid,
      api_version: '2010-04-01',
      body: m.body,
      num_segments: String(Math.max(1, Math.ceil(m.body.length / 160))),
      num_media: String(m.numMedia),
      date_created: rfc2822(m.dateCreated),
      date_sent: rfc2822(m.dateSent),
      date_updated: rfc2822(m.dateUpdated),
      direction: m.direction,
      error_code: m.errorCode,
      error_message: null,
      from: m.from,
      messaging_service_sid: null,
      price: null,
      price_unit: 'USD',
      sid: m.sid,
      status: m.status,
      subresource_uris: { media: `${base}/Media.json` },
      to: m.to,
      uri: `${base}.json`,
    };
  }

  /** A media item's JSON. */
  mediaJson(m: FakeMedia, prefix: string): Record<string, unknown> {
    return {
      account_sid: m.accountSid,
      content_type: m.contentType,
      date_created: rfc2822(m.dateCreated),
      date_updated: rfc2822(m.dateCreated),
      parent_sid: m.messageSid,
      sid: m.sid,
      uri: `${prefix}/2010-04-01/Accounts/${m.accountSid}/Messages/${m.messageSid}/Media/${m.sid}.json`,
    };
  }
}
