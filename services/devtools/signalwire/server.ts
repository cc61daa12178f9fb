import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { CallbackSender } from './callbacks.ts';
import { ERR, sendError, sendJson } from './errors.ts';
import type { Faults } from './faults.ts';
import type { Lifecycle } from './lifecycle.ts';
import { inProgress, type FakeStore, type ListFilter, type Outcome } from './store.ts';

/** One request the fake received, for assertions. */
export interface RecordedRequest {
  /** HTTP method. */
  method: string;
  /** Path without the `/api/laml` prefix. */
  path: string;
  /** True when the `/api/laml` prefix was used. */
  laml: boolean;
  /** Query parameters (repeated names kept). */
  query: Record<string, string[]>;
  /** Form parameters of a POST (repeated names kept). */
  form: Record<string, string[]>;
  /** Whether Basic Auth matched. */
  authorized: boolean;
  /** Status answered. */
  status: number;
}

/** What the router needs. */
export interface RouterContext {
  /** Project id (also the AccountSid in paths). */
  projectId: string;
  /** API token. */
  token: string;
  /** Message and media state. */
  store: FakeStore;
  /** Status lifecycle. */
  lifecycle: Lifecycle;
  /** Status callbacks. */
  callbacks: CallbackSender;
  /** Injected failures. */
  faults: Faults;
  /** Request log. */
  requests: RecordedRequest[];
  /** Outcome for the next created message, if set (consumed). */
  nextOutcomes: Outcome[];
  /** Outcome per destination number. */
  outcomeByNumber: Map<string, Outcome>;
  /** Outcome when nothing else says. */
  defaultOutcome: Outcome;
}

const E164 = /^\+[1-9]\d{6,14}$/;
const MAX_PAGE_SIZE = 1000;

function parseForm(text: string): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [k, v] of new URLSearchParams(text)) (out[k] ??= []).push(v);
  return out;
}

function authorized(req: IncomingMessage, ctx: RouterContext): boolean {
  const header = req.headers.authorization ?? '';
  if (!header.startsWith('Basic ')) return false;
  const expected = Buffer.from(`${ctx.projectId}:${ctx.token}`);
  const given = Buffer.from(Buffer.from(header.slice(6), 'base64').toString('utf8'));
  return given.length === expected.length && timingSafeEqual(given, expected);
}

function parseDate(v: string | undefined): Date | undefined {
  if (!v) return undefined;
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? undefined : d;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Handles one HTTP request against the fake Compatibility API. */
export async function handle(req: IncomingMessage, res: ServerResponse, ctx: RouterContext): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://fake');
  const laml = url.pathname.startsWith('/api/laml/');
  const path = laml ? url.pathname.slice('/api/laml'.length) : url.pathname;
  const prefix = laml ? '/api/laml' : '';
  const method = req.method ?? 'GET';
  const text = method === 'POST' ? await readBody(req) : '';
  const query: Record<string, string[]> = {};
  for (const [k, v] of url.searchParams) (query[k] ??= []).push(v);
  const record: RecordedRequest = { method, path, laml, query, form: parseForm(text), authorized: authorized(req, ctx), status: 0 };
  ctx.requests.push(record);
  const origEnd = res.writeHead.bind(res);
  res.writeHead = ((status: number, ...rest: unknown[]) => {
    record.status = status;
    return (origEnd as (...a: unknown[]) => ServerResponse)(status, ...rest);
  }) as typeof res.writeHead;

  if (!record.authorized) {
    sendError(res, 401, ERR.authentication, 'Authentication Error - invalid username', { 'www-authenticate': 'Basic realm="SignalWire"' });
    return;
  }
  const m = /^\/2010-04-01\/Accounts\/([^/]+)\/Messages(?:\/([^/]+?))?(?:\/Media(?:\/([^/]+?))?)?\.json$/.exec(path);
  const isMediaPath = /\/Media(\/[^/]+)?\.json$/.test(path);
  if (!m) {
    sendError(res, 404, ERR.notFound, `The requested resource ${path} was not found`);
    return;
  }
  const [, accountSid, sid, mediaSid] = m;
  if (accountSid !== ctx.projectId) {
    sendError(res, 401, ERR.authentication, 'Authentication Error - the account does not match the credentials');
    return;
  }
  await ctx.faults.passHolds(method, path);
  if (res.destroyed) return;
  const fault = ctx.faults.take(method, path);
  if (fault) {
    const headers: Record<string, string> = fault.retryAfter !== undefined ? { 'retry-after': String(fault.retryAfter) } : {};
    if (fault.nonJson) {
      const html = `<html><body><h1>${fault.status} Service Temporarily Unavailable</h1></body></html>`;
      res.writeHead(fault.status, { 'content-type': 'text/html', ...headers });
      res.end(html);
    } else if (fault.status === 429) {
      sendError(res, 429, ERR.tooManyRequests, 'Too Many Requests', headers);
    } else {
      sendError(res, fault.status, fault.status === 503 ? ERR.unavailable : ERR.internal, 'Internal Server Error', headers);
    }
    return;
  }

  if (!sid) return messagesCollection(res, ctx, method, record, url, prefix);
  if (isMediaPath) return mediaResource(res, ctx, method, sid, mediaSid, url, prefix);
  return messageResource(res, ctx, method, sid, record, prefix);
}

function messagesCollection(res: ServerResponse, ctx: RouterContext, method: string, record: RecordedRequest, url: URL, prefix: string): void {
  if (method === 'POST') {
    const f = record.form;
    const to = f.To?.[0];
    const from = f.From?.[0];
    const body = f.Body?.[0] ?? '';
    const mediaUrls = f.MediaUrl ?? [];
    if (!to) return sendError(res, 400, ERR.missingTo, "A 'To' phone number is required.");
    if (!from) return sendError(res, 400, ERR.missingFrom, "A 'From' phone number is required.");
    if (!E164.test(to)) return sendError(res, 400, ERR.invalidTo, `The 'To' number ${to} is not a valid phone number.`);
    if (body === '' && mediaUrls.length === 0) return sendError(res, 400, ERR.missingBody, 'Message body is required.');
    if (body.length > 1600) return sendError(res, 400, ERR.invalidParameter, 'The message body exceeds the 1600 character limit.');
    const outcome = ctx.nextOutcomes.shift() ?? ctx.outcomeByNumber.get(to) ?? ctx.defaultOutcome;
    const callback = f.StatusCallback?.[0];
    const msg = ctx.store.create({ accountSid: ctx.projectId, to, from, body, mediaUrls, outcome, ...(callback ? { statusCallback: callback } : {}) });
    ctx.lifecycle.started(msg);
    return sendJson(res, 201, ctx.store.messageJson(msg, prefix));
  }
  if (method !== 'GET') return sendError(res, 405, ERR.invalidParameter, `Method ${method} not allowed`);
  const q = (k: string) => url.searchParams.get(k) ?? undefined;
  const pageSize = Math.min(MAX_PAGE_SIZE, Math.max(1, Number(q('PageSize') ?? 50) || 50));
  const page = Math.max(0, Number(q('Page') ?? 0) || 0);
  const filter: ListFilter = {};
  // The SDK sends `DateSent>` / `DateSent<`, which read as `DateSent>=` / `DateSent<=` on the wire.
  const after = parseDate(q('DateSent>') ?? q('DateSent>='));
  const before = parseDate(q('DateSent<') ?? q('DateSent<='));
  const on = parseDate(q('DateSent'));
  if (after) filter.sentAfter = after;
  if (before) filter.sentBefore = before;
  if (on) filter.sentOn = on;
  const to = q('To');
  const from = q('From');
  if (to) filter.to = to;
  if (from) filter.from = from;
  const token = q('PageToken');
  const tokenSeq = token && /^PA\d+$/.test(token) ? Number(token.slice(2)) : undefined;
  const all = ctx.store.list(filter, tokenSeq);
  const offset = tokenSeq === undefined ? page * pageSize : 0;
  const items = all.slice(offset, offset + pageSize);
  const more = all.length > offset + pageSize;
  const base = `${prefix}/2010-04-01/Accounts/${ctx.projectId}/Messages.json`;
  const keep = new URLSearchParams();
  for (const [k, v] of url.searchParams) if (!['Page', 'PageSize', 'PageToken'].includes(k)) keep.append(k, v);
  const pageUri = (p: number, tok?: string) => {
    const params = new URLSearchParams(keep);
    params.set('PageSize', String(pageSize));
    params.set('Page', String(p));
    if (tok) params.set('PageToken', tok);
    return `${base}?${params.toString()}`;
  };
  const last = items.at(-1);
  sendJson(res, 200, {
    uri: pageUri(page, token),
    first_page_uri: pageUri(0),
    next_page_uri: more && last ? pageUri(page + 1, `PA${last.seq}`) : null,
    previous_page_uri: page > 0 ? pageUri(page - 1) : null,
    page,
    page_size: pageSize,
    start: page * pageSize,
    end: page * pageSize + Math.max(0, items.length - 1),
    messages: items.map((msg) => ctx.store.messageJson(msg, prefix)),
  });
}

function messageResource(res: ServerResponse, ctx: RouterContext, method: string, sid: string, record: RecordedRequest, prefix: string): void {
  const msg = ctx.store.messages.get(sid);
  if (!msg) return sendError(res, 404, ERR.notFound, `The requested resource /2010-04-01/Accounts/${ctx.projectId}/Messages/${sid}.json was not found`);
  if (method === 'GET') return sendJson(res, 200, ctx.store.messageJson(msg, prefix));
  if (method === 'POST') {
    const names = Object.keys(record.form);
    if (names.length !== 1 || names[0] !== 'Body' || record.form.Body!.length !== 1 || record.form.Body![0] !== '') {
      return sendError(res, 400, ERR.bodyNotRedaction, 'Only an empty Body may be posted to redact a message.');
    }
    if (inProgress(msg.status)) return sendError(res, 400, ERR.inProgress, 'Cannot redact a message that is in progress.');
    msg.body = '';
    msg.dateUpdated = new Date();
    return sendJson(res, 200, ctx.store.messageJson(msg, prefix));
  }
  if (method === 'DELETE') {
    if (inProgress(msg.status)) return sendError(res, 400, ERR.inProgress, 'Cannot delete a message that is in progress.');
    ctx.store.messages.delete(sid);
    ctx.store.deleted.add(sid);
    ctx.lifecycle.forget(sid);
    // As on SignalWire: the media stays.
    res.writeHead(204);
    res.end();
    return;
  }
  sendError(res, 405, ERR.invalidParameter, `Method ${method} not allowed`);
}

function mediaResource(res: ServerResponse, ctx: RouterContext, method: string, sid: string, mediaSid: string | undefined, url: URL, prefix: string): void {
  const msg = ctx.store.messages.get(sid);
  const known = msg !== undefined || ctx.store.deleted.has(sid);
  if (!known) return sendError(res, 404, ERR.notFound, `The requested resource Messages/${sid}/Media.json was not found`);
  const items = ctx.store.media.get(sid) ?? new Map();
  if (!mediaSid) {
    if (method !== 'GET') return sendError(res, 405, ERR.invalidParameter, `Method ${method} not allowed`);
    const pageSize = Math.min(MAX_PAGE_SIZE, Math.max(1, Number(url.searchParams.get('PageSize') ?? 50) || 50));
    const page = Math.max(0, Number(url.searchParams.get('Page') ?? 0) || 0);
    const all = ctx.store.mediaOf(sid);
    const slice = all.slice(page * pageSize, (page + 1) * pageSize);
    const base = `${prefix}/2010-04-01/Accounts/${ctx.projectId}/Messages/${sid}/Media.json`;
    return sendJson(res, 200, {
      uri: `${base}?PageSize=${pageSize}&Page=${page}`,
      first_page_uri: `${base}?PageSize=${pageSize}&Page=0`,
      next_page_uri: all.length > (page + 1) * pageSize ? `${base}?PageSize=${pageSize}&Page=${page + 1}` : null,
      previous_page_uri: page > 0 ? `${base}?PageSize=${pageSize}&Page=${page - 1}` : null,
      page,
      page_size: pageSize,
      start: page * pageSize,
      end: page * pageSize + Math.max(0, slice.length - 1),
      media_list: slice.map((m) => ctx.store.mediaJson(m, prefix)),
    });
  }
  const item = items.get(mediaSid);
  if (!item) return sendError(res, 404, ERR.notFound, `The requested resource Media/${mediaSid}.json was not found`);
  if (method === 'GET') return sendJson(res, 200, ctx.store.mediaJson(item, prefix));
  if (method === 'DELETE') {
    if (msg && inProgress(msg.status)) return sendError(res, 400, ERR.inProgress, 'Cannot delete media of a message that is in progress.');
    items.delete(mediaSid);
    res.writeHead(204);
    res.end();
    return;
  }
  sendError(res, 405, ERR.invalidParameter, `Method ${method} not allowed`);
}
