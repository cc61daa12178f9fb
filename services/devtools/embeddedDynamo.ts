import type { AddressInfo } from 'node:net';

/** A DynamoDB endpoint served in this process by dynalite (development and tests). */
export interface EmbeddedDynamo {
  /** Endpoint URL for DYNAMODB_ENDPOINT. */
  endpoint: string;
  /** Stops the server (and closes its files). */
  stop(): Promise<void>;
}

/** Options for {@link startEmbeddedDynamo}. */
export interface EmbeddedDynamoOptions {
  /** Port on loopback; 0 (default) picks a free one. */
  port?: number;
  /** A folder to persist the tables in; absent keeps them in memory. */
  path?: string;
}

/**
 * Starts dynalite (a pure-JS DynamoDB implementation; its disk mode uses LevelDB's
 * prebuilt binary) on loopback. It has no TTL API: expiry is checked on read anyway.
 */
export async function startEmbeddedDynamo(options: EmbeddedDynamoOptions = {}): Promise<EmbeddedDynamo> {
  const { default: dynalite } = await import('dynalite');
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0, ...(options.path ? { path: options.path } : {}) });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    // Requests still being answered finish first: dynalite closes its database on close, and a
    // request cut off mid-write would throw "Database is closed" out of the process.
    stop: () =>
      new Promise<void>((resolve) => {
        const force = setTimeout(() => server.closeAllConnections(), 2000);
        server.close(() => {
          clearTimeout(force);
          resolve();
        });
        server.closeIdleConnections();
      }),
  };
}
