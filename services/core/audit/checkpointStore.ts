import { constants } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import { parseSignedCheckpoint, type SignedCheckpoint } from './checkpoint.ts';
import { AuditError } from './errors.ts';

/** The checkpoints of a store file, in file order, or the first bad line. */
export type CheckpointRead = { ok: true; exists: boolean; checkpoints: SignedCheckpoint[] } | { ok: false; line: number; reason: string };

/**
 * Reads a checkpoint file: one signed checkpoint (JSON) per line, own and witnessed ones mixed.
 * A missing file reads as none (`exists: false`). Throws AuditError when it cannot be read.
 */
export async function readCheckpointFile(file: string): Promise<CheckpointRead> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    if (code === 'ENOENT') return { ok: true, exists: false, checkpoints: [] };
    throw new AuditError('CR_AUDIT_UNREADABLE', `checkpoint file ${file}: cannot read (${code})`, err);
  }
  const checkpoints: SignedCheckpoint[] = [];
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  for (const [i, line] of lines.entries()) {
    const parsed = parseSignedCheckpoint(line);
    if ('reason' in parsed) return { ok: false, line: i + 1, reason: parsed.reason };
    checkpoints.push(parsed.signed);
  }
  return { ok: true, exists: true, checkpoints };
}

/** An append-only checkpoint file, kept apart from the trail. */
export interface CheckpointStore {
  /** Path of the file. */
  readonly file: string;
  /** Appends one signed checkpoint and fdatasyncs it. */
  append(signed: SignedCheckpoint): Promise<void>;
}

/** Opens a checkpoint store (the file is created with mode 0600 on first append). Appends are serialized. */
export function checkpointStore(file: string): CheckpointStore {
  let tail: Promise<void> = Promise.resolve();
  return {
    file,
    append(signed) {
      const write = async (): Promise<void> => {
        let fh;
        try {
          fh = await open(file, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT, 0o600);
          await fh.appendFile(JSON.stringify(signed) + '\n', 'utf8');
          await fh.datasync();
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code ?? 'error';
          throw new AuditError('CR_AUDIT_WRITE_FAILED', `checkpoint file ${file}: write failed (${code})`, err);
        } finally {
          await fh?.close();
        }
      };
      const next = tail.then(write, write);
      tail = next.catch(() => {});
      return next;
    },
  };
}
