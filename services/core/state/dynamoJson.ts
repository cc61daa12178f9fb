import { createHash, createHmac, createSecretKey, type KeyObject } from 'node:crypto';
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { DescribeTableCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';

/**
 * DynamoDB's JSON protocol (awsJson1_0) for the state table's per-message calls, without the SDK's
 * request pipeline. Each call through the SDK cost about three times the CPU of the request itself
 * (middleware, endpoint rules and config copies per call; docs/benchmarks.md, "The state table's
 * calls without the SDK's pipeline"). What stays the SDK's: the credentials (the client's own
 * provider chain, refreshed as it refreshes them) and the endpoint (where the client itself would
 * send a request, resolved once: {@link sdkEndpoint}). What is done here, as the SDK does it: Signature Version 4 (each call signed,
 * the session token sent with temporary credentials), up to `maxAttempts` attempts with
 * exponential backoff and full jitter for throttling, 5xx answers and broken connections, within
 * the SDK's retry quota, and the clock corrected from the store's `Date` when it answers that a
 * request's time is off.
 */
export interface DynamoJson {
  /** Calls `operation` (e.g. `UpdateItem`) with `input` as DynamoDB's JSON; answers the parsed output. */
  call<T = Record<string, unknown>>(operation: string, input: object): Promise<T>;
  /** Where the calls go: where the SDK client would send them ({@link sdkEndpoint}). */
  endpoint(): Promise<URL>;
  /** Closes the kept-alive connections. */
  destroy(): void;
}

/** Options for {@link createDynamoJson}. */
export interface DynamoJsonOptions {
  /** The SDK client whose credentials and endpoint rules are used (its own configuration). */
  client: DynamoDBClient;
  /** AWS region (the signing region). */
  region: string;
  /** Attempts per call (default 3, as the SDK's standard retry). */
  maxAttempts?: number;
  /** Milliseconds to wait for a connection (default 5000). */
  connectionTimeoutMs?: number;
  /** Milliseconds a connection may stay silent during a call before it is given up (default 30,000). */
  socketTimeoutMs?: number;
  /** Random in [0, 1) for the backoff's jitter (tests). */
  random?: () => number;
  /** Waits `ms` between attempts (tests). */
  sleep?: (ms: number) => Promise<void>;
  /** The current time, ms since the epoch (tests: a fixed clock). */
  now?: () => number;
}

/** An error answered by DynamoDB (its `__type`, e.g. `ConditionalCheckFailedException`) or met on the way. */
export class DynamoCallError extends Error {
  readonly $metadata: { httpStatusCode?: number; requestId?: string; attempts: number };
  /** The item as it is, when a condition failed and the call asked for it. */
  readonly Item?: Record<string, unknown>;
  constructor(name: string, message: string, metadata: { httpStatusCode?: number; requestId?: string; attempts: number }, extra: { Item?: Record<string, unknown>; cause?: unknown } = {}) {
    super(message, extra.cause === undefined ? undefined : { cause: extra.cause });
    this.name = name;
    this.$metadata = metadata;
    if (extra.Item) this.Item = extra.Item;
  }
}

/** The SDK's throttling error codes (retried after a longer base delay). */
const THROTTLING = new Set([
  'ThrottlingException', 'Throttling', 'ThrottledException', 'RequestThrottledException', 'TooManyRequestsException', 'ProvisionedThroughputExceededException',
  'TransactionInProgressException', 'RequestLimitExceeded', 'BandwidthLimitExceeded', 'LimitExceededException', 'RequestThrottled', 'SlowDown', 'PriorRequestNotComplete', 'EC2ThrottledException',
]);
/** Codes that say the request's time is off: retried with the clock corrected from the answer's `Date`. */
const CLOCK_SKEW = new Set(['AuthFailure', 'InvalidSignatureException', 'RequestExpired', 'RequestInTheFuture', 'RequestTimeTooSkewed', 'SignatureDoesNotMatch']);
/** Connection errors worth another attempt (the SDK's transient network errors). */
const TRANSIENT_NETWORK = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'TimeoutError']);
/** 5xx answers retried. */
const TRANSIENT_STATUS = new Set([500, 502, 503, 504]);
/** The SDK's backoff: base delays and the cap, ms. */
const BASE_DELAY_MS = 100;
const THROTTLING_BASE_DELAY_MS = 500;
const MAX_DELAY_MS = 20_000;
/** The store's time and ours may differ this much before a request is re-timed (the SDK's five minutes). */
const SKEW_MS = 300_000;
/**
 * The SDK's retry quota: retries spend from a budget (10 after a timeout or broken connection, 5
 * otherwise); a call answered gives its last retry's cost back (1 when it needed none), so when
 * most calls fail they stop being retried instead of tripling the load on a struggling store.
 */
const RETRY_BUDGET = 500;
const RETRY_COST = 5;
const TIMEOUT_RETRY_COST = 10;

const JSON_CONTENT_TYPE = 'application/x-amz-json-1.0';
const hex = (data: string | Buffer, key?: KeyObject): string => (key ? createHmac('sha256', key).update(data).digest('hex') : createHash('sha256').update(data).digest('hex'));
const hmac = (key: Buffer | string, data: string): Buffer => createHmac('sha256', key).update(data).digest();

/** A JSON.stringify replacer writing binary values as base64. */
const base64Binary = (_key: string, value: unknown): unknown => (value instanceof Uint8Array ? Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64') : value);

/** Whether a request holds a binary value anywhere. */
function hasBinary(value: unknown): boolean {
  if (value === null || typeof value !== 'object') return false;
  if (value instanceof Uint8Array) return true;
  for (const inner of Array.isArray(value) ? value : Object.values(value)) if (hasBinary(inner)) return true;
  return false;
}

/** `20261130T235959Z` of a time. */
function amzDate(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
}

/**
 * Where `client` would send a request: its configured endpoint (`endpoint`, or `AWS_ENDPOINT_URL_DYNAMODB`
 * and the like), else the region's by the SDK's endpoint rules (FIPS, dual-stack, account-based
 * endpoints as the client is configured). A DescribeTable is taken through the client's middleware
 * up to the built request, whose address is read; nothing is signed or sent.
 */
export async function sdkEndpoint(client: DynamoDBClient): Promise<URL> {
  const probe = new DescribeTableCommand({ TableName: 'endpoint-probe' });
  let found: URL | undefined;
  probe.middlewareStack.add(
    () => async (args) => {
      const r = args.request as { protocol: string; hostname: string; port?: number; path: string };
      found = new URL(`${r.protocol}//${r.hostname}${r.port ? `:${r.port}` : ''}${r.path}`);
      return { output: { $metadata: {} }, response: {} } as never;
    },
    { step: 'build', name: 'careRelayEndpointProbe' },
  );
  // With options given, the client resolves this command's own middleware (its cached handlers are not used).
  await client.send(probe, {});
  if (!found) throw new Error('state store: the SDK resolved no endpoint');
  return found;
}

/** A request's answer: status, headers, body. */
interface Answer {
  status: number;
  headers: IncomingMessage['headers'];
  body: string;
}

/** Creates the JSON protocol caller for one state table's client. */
export function createDynamoJson(options: DynamoJsonOptions): DynamoJson {
  const { client, region } = options;
  const maxAttempts = Math.max(1, options.maxAttempts ?? 3);
  const connectionTimeoutMs = options.connectionTimeoutMs ?? 5000;
  const socketTimeoutMs = options.socketTimeoutMs ?? 30_000;
  const random = options.random ?? Math.random;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const now = options.now ?? Date.now;
  const agents = { http: new HttpAgent({ keepAlive: true, maxSockets: 50 }), https: new HttpsAgent({ keepAlive: true, maxSockets: 50 }) };
  let clockOffsetMs = 0;
  let budget = RETRY_BUDGET;
  /** Takes a retry's cost from the budget; false (no retry) when it is spent. */
  const spend = (cost: number): boolean => {
    if (budget < cost) return false;
    budget -= cost;
    return true;
  };
  /** Waits before the attempt after `attempt`: full jitter over `base` doubled per attempt, at most MAX_DELAY_MS. */
  const backoff = (attempt: number, base: number): Promise<void> => sleep(random() * Math.min(MAX_DELAY_MS, base * 2 ** (attempt - 1)));
  /** A call answered: its last retry's cost back, or 1 when it needed none. */
  const refill = (lastCost: number): void => {
    budget = Math.min(RETRY_BUDGET, budget + (lastCost || 1));
  };
  let target: Promise<URL> | undefined;
  /**
   * The signing key of one day (kept: it changes at midnight UTC or with the credentials), as a key
   * object: Node turns an HMAC key given as bytes into one on every `createHmac`, about five times the
   * HMAC itself (as in runtime/awsSha256.ts).
   */
  let signingKey: { for: string; key: KeyObject } | undefined;

  const endpoint = (): Promise<URL> => {
    if (!target) {
      const resolving = sdkEndpoint(client);
      // A failed resolution (no credentials yet, say) is tried again by the next call.
      resolving.catch(() => {
        if (target === resolving) target = undefined;
      });
      target = resolving;
    }
    return target;
  };

  /** Signature Version 4 headers for a POST of `body` to `url`'s root at `ms`. */
  const sign = async (url: URL, operation: string, body: string, ms: number): Promise<Record<string, string>> => {
    const creds = await client.config.credentials();
    const date = amzDate(ms);
    const day = date.slice(0, 8);
    const scope = `${day}/${region}/dynamodb/aws4_request`;
    const headers: Record<string, string> = {
      'content-type': JSON_CONTENT_TYPE,
      host: url.host,
      'x-amz-date': date,
      ...(creds.sessionToken ? { 'x-amz-security-token': creds.sessionToken } : {}),
      'x-amz-target': `DynamoDB_20120810.${operation}`,
    };
    const names = Object.keys(headers).sort();
    const signedHeaders = names.join(';');
    const canonical = `POST\n${url.pathname || '/'}\n\n${names.map((n) => `${n}:${headers[n]!.trim()}\n`).join('')}\n${signedHeaders}\n${hex(body)}`;
    const stringToSign = `AWS4-HMAC-SHA256\n${date}\n${scope}\n${hex(canonical)}`;
    const keyFor = `${creds.accessKeyId}\n${creds.secretAccessKey}\n${scope}`;
    if (signingKey?.for !== keyFor) signingKey = { for: keyFor, key: createSecretKey(hmac(hmac(hmac(hmac(`AWS4${creds.secretAccessKey}`, day), region), 'dynamodb'), 'aws4_request')) };
    headers.authorization = `AWS4-HMAC-SHA256 Credential=${creds.accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${hex(stringToSign, signingKey.key)}`;
    headers['content-length'] = String(Buffer.byteLength(body));
    headers['user-agent'] = 'care-relay';
    return headers;
  };

  /** One HTTP exchange; rejects with a connection error (its `code`) or a TimeoutError. */
  const exchange = (url: URL, headers: Record<string, string>, body: string): Promise<Answer> =>
    new Promise<Answer>((resolve, reject) => {
      const https = url.protocol === 'https:';
      const req = (https ? httpsRequest : httpRequest)({ protocol: url.protocol, hostname: url.hostname, port: url.port || undefined, path: url.pathname || '/', method: 'POST', headers, agent: https ? agents.https : agents.http });
      const timeout = (what: string, ms: number): Error => Object.assign(new Error(`state store: no ${what} within ${ms} ms`), { name: 'TimeoutError', code: 'TimeoutError' });
      let connectTimer: NodeJS.Timeout | undefined;
      req.once('socket', (socket) => {
        // A kept-alive socket is connected already; a new one has `connectionTimeoutMs` to connect
        // (counted from when the agent gives the request a socket, not while it waits for one).
        if (!socket.connecting) return;
        connectTimer = setTimeout(() => req.destroy(timeout('connection', connectionTimeoutMs)), connectionTimeoutMs);
        socket.once('connect', () => clearTimeout(connectTimer));
      });
      req.setTimeout(socketTimeoutMs, () => req.destroy(timeout('answer', socketTimeoutMs)));
      req.once('error', (err) => {
        clearTimeout(connectTimer);
        reject(err);
      });
      req.once('response', (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.once('error', reject);
        res.once('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      });
      req.end(body);
    });

  /** The error a non-200 answer carries. */
  const answeredError = (answer: Answer, attempts: number): DynamoCallError => {
    let parsed: { __type?: string; message?: string; Message?: string; Item?: Record<string, unknown> } = {};
    try {
      parsed = answer.body ? (JSON.parse(answer.body) as typeof parsed) : {};
    } catch {
      // Not JSON (a proxy's page, a cut answer): named by its status below.
    }
    const type = parsed.__type ?? String(answer.headers['x-amzn-errortype'] ?? '').split(':')[0];
    const name = type ? type.slice(type.lastIndexOf('#') + 1) : answer.status >= 500 ? 'InternalServerError' : `HTTP${answer.status}`;
    const requestId = answer.headers['x-amzn-requestid'];
    return new DynamoCallError(name, parsed.message ?? parsed.Message ?? `state store answered ${answer.status}`, { httpStatusCode: answer.status, ...(typeof requestId === 'string' ? { requestId } : {}), attempts }, parsed.Item ? { Item: parsed.Item } : {});
  };

  return {
    endpoint,
    async call<T>(operation: string, input: object): Promise<T> {
      const url = await endpoint();
      // Binary values go as base64, as DynamoDB's JSON has them (the replacer only when there are any: it
      // doubles what JSON.stringify costs).
      const body = JSON.stringify(input, hasBinary(input) ? base64Binary : undefined);
      let lastCost = 0;
      for (let attempt = 1; ; attempt++) {
        let answer: Answer;
        try {
          answer = await exchange(url, await sign(url, operation, body, now() + clockOffsetMs), body);
        } catch (err) {
          const code = (err as { code?: string }).code ?? '';
          if (attempt >= maxAttempts || !TRANSIENT_NETWORK.has(code) || !spend((lastCost = TIMEOUT_RETRY_COST))) {
            if (err instanceof Error) Object.assign(err, { $metadata: { attempts: attempt } });
            throw err;
          }
          await backoff(attempt, BASE_DELAY_MS);
          continue;
        }
        if (answer.status === 200) {
          refill(lastCost);
          return (answer.body ? JSON.parse(answer.body) : {}) as T;
        }
        const error = answeredError(answer, attempt);
        let retry = TRANSIENT_STATUS.has(answer.status) || THROTTLING.has(error.name);
        if (CLOCK_SKEW.has(error.name)) {
          const server = Date.parse(String(answer.headers.date ?? ''));
          if (Number.isFinite(server) && Math.abs(server - (now() + clockOffsetMs)) >= SKEW_MS) {
            clockOffsetMs = server - now();
            retry = true;
          }
        }
        if (!retry || attempt >= maxAttempts || !spend((lastCost = RETRY_COST))) throw error;
        await backoff(attempt, THROTTLING.has(error.name) ? THROTTLING_BASE_DELAY_MS : BASE_DELAY_MS);
      }
    },
    destroy() {
      agents.http.destroy();
      agents.https.destroy();
    },
  };
}
