// The SQS emulator of `care-relay dev`, persisted in a folder so that stopping or crashing
// the whole stack loses no queued and no in-flight message.
//
// fauxqs 2.4.1 writes every queue change through to SQLite (`<dir>/fauxqs.db`), with one
// defect: releasing an in-flight message (ChangeMessageVisibility with VisibilityTimeout 0,
// which the consumers do on a retry and on shutdown) makes `updateMessageReady` write NULL
// into the NOT NULL column `approximate_receive_count`. SQLite rejects that UPDATE, and by
// then the emulator has dropped the message from its in-flight set without putting it back
// on the queue: the call fails with MessageNotInflight and the message vanishes until the
// next restart. The correction below clears only the in-flight columns (receipt handle and
// visibility deadline) and keeps the receive count, which the redrive policy depends on.
// test/devtools/durableSqs.test.ts shows the upstream defect and that the correction holds;
// when a fauxqs release fixes it, that test fails and this file can go.
import { dirname, join } from 'node:path';
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** A running emulator. */
export interface DurableSqs {
  /** Endpoint URL, e.g. http://127.0.0.1:4566. */
  address: string;
  /** Stops the server and closes its database. */
  stop(): Promise<void>;
}

/** Options for {@link startDurableSqs}. */
export interface DurableSqsOptions {
  /** Port on 127.0.0.1 (0 for any free port). */
  port: number;
  /** Folder of the SQLite file; created if missing. */
  dataDir: string;
}

interface PersistenceManagerLike {
  db: DatabaseSync;
  updateMessageReady(messageId: string): void;
}

const READY_SQL = 'UPDATE sqs_messages SET receipt_handle = NULL, visibility_deadline = NULL WHERE message_id = ?';
const statements = new WeakMap<DatabaseSync, StatementSync>();
let corrected = false;

/** Applies the correction to fauxqs's persistence (once per process); throws if fauxqs changed shape. */
export async function correctFauxqsPersistence(): Promise<void> {
  if (corrected) return;
  // The persistence class is not exported by the package; it sits beside the entry point.
  const entry = fileURLToPath(import.meta.resolve('fauxqs'));
  const mod = (await import(pathToFileURL(join(dirname(entry), 'persistence.js')).href)) as {
    PersistenceManager?: { prototype: PersistenceManagerLike };
  };
  const proto = mod.PersistenceManager?.prototype;
  if (typeof proto?.updateMessageReady !== 'function') {
    throw new Error('fauxqs changed: PersistenceManager.updateMessageReady not found; review services/devtools/durableSqs.ts');
  }
  proto.updateMessageReady = function updateMessageReady(this: PersistenceManagerLike, messageId: string): void {
    let statement = statements.get(this.db);
    if (!statement) {
      statement = this.db.prepare(READY_SQL);
      statements.set(this.db, statement);
    }
    statement.run(messageId);
  };
  corrected = true;
}

/** Starts fauxqs on loopback with its queues persisted in `dataDir` (corrected, see above). */
export async function startDurableSqs(options: DurableSqsOptions): Promise<DurableSqs> {
  await correctFauxqsPersistence();
  const { startFauxqs } = await import('fauxqs');
  const server = await startFauxqs({ port: options.port, host: '127.0.0.1', logger: false, dataDir: options.dataDir });
  return { address: server.address, stop: () => server.stop() };
}
