// The in-process SQS emulator (fauxqs) that `npm start`, the tests and the bench run on.
// fauxqs is a development dependency: this file is loaded only by dev tooling.
import { correctFauxqsPersistence } from './durableSqs.ts';

/** Options for {@link startSqsEmulator}. */
export interface SqsEmulatorOptions {
  /** Port (0 picks a free one). */
  port?: number;
  /** Address to listen on (default loopback). */
  host?: string;
  /** A folder for SQLite persistence (with the correction of durableSqs.ts), so a restart keeps queued and in-flight messages; in memory when omitted. */
  dataDir?: string;
}

/** A running SQS emulator. */
export interface SqsEmulator {
  /** Endpoint URL, e.g. `http://127.0.0.1:4566`. */
  endpoint: string;
  /** Region its clients use. */
  region: string;
  /** Static credentials it accepts (any would do; static ones keep the SDK from probing the host). */
  credentials: { accessKeyId: string; secretAccessKey: string };
  /** The environment a service needs to reach it: SQS_ENDPOINT, AWS_REGION and the static credentials. */
  serviceEnv(): Record<string, string>;
  /** Stops listening. */
  stop(): Promise<void>;
}

/** Starts the fauxqs emulator in-process. */
export async function startSqsEmulator(options: SqsEmulatorOptions = {}): Promise<SqsEmulator> {
  if (options.dataDir) await correctFauxqsPersistence();
  const { startFauxqs } = await import('fauxqs');
  const server = await startFauxqs({
    port: options.port ?? 0,
    host: options.host ?? '127.0.0.1',
    logger: false,
    ...(options.dataDir ? { dataDir: options.dataDir } : {}),
  });
  const endpoint = server.address;
  const region = 'us-east-1';
  const credentials = { accessKeyId: 'dev', secretAccessKey: 'dev' };
  return {
    endpoint,
    region,
    credentials,
    serviceEnv: () => ({
      SQS_ENDPOINT: endpoint,
      AWS_REGION: region,
      AWS_ACCESS_KEY_ID: credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
    }),
    stop: () => server.stop(),
  };
}
