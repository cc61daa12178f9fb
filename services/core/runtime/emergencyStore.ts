import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';
import { z } from 'zod';
import { defineErrors } from '../errors/defineErrors.ts';
import { fromCatalogue, RelayError } from '../errors/relayError.ts';

/** The emergency switch as persisted: its position, when and by whom it was last switched. */
export interface EmergencyState {
  /** True while emergency mode is on. */
  active: boolean;
  /** RFC 3339 UTC time of the switch. */
  changedAt: string;
  /** Admin token name, or `config` for EMERGENCY_MODE at start. */
  actor: string;
  /** Why, as the admin gave it (bounded; kept out of logs and the audit trail). */
  reason?: string;
}

/** Where the emergency switch survives restarts (a file here; a DynamoDB item elsewhere). */
export interface EmergencyStore {
  /** The last saved state, or undefined when none was ever saved; throws when what is stored is unusable. */
  load(): Promise<EmergencyState | undefined>;
  /** Saves the state durably before resolving. */
  save(state: EmergencyState): Promise<void>;
}

/** Longest `reason` accepted, in characters. */
export const EMERGENCY_REASON_MAX = 500;

/** The emergency store's one code (docs/errors.md): the service does not start. */
export const EMERGENCY_ERRORS = defineErrors({
  CR_EMERGENCY_STATE_INVALID: { title: 'Emergency state invalid', description: 'The persisted emergency state cannot be read or is invalid; the service does not start (fail closed).' },
} as const);

/** Raised when the persisted emergency state cannot be read or is invalid: the service does not start (fail closed). */
export class EmergencyStateError extends RelayError {
  constructor(message: string, cause?: unknown) {
    super('CR_EMERGENCY_STATE_INVALID', message, fromCatalogue(EMERGENCY_ERRORS.CR_EMERGENCY_STATE_INVALID, { cause }));
    this.name = 'EmergencyStateError';
  }
}

/** The shape a stored state must have; anything else is refused. */
export const emergencyStateSchema = z.strictObject({
  active: z.boolean(),
  changedAt: z.iso.datetime({ offset: true }),
  actor: z.string().min(1).max(200),
  reason: z.string().max(EMERGENCY_REASON_MAX).optional(),
});

/** Default state file: next to the audit trail, `<audit file name>.emergency.json`. */
export function defaultEmergencyStateFile(auditFile: string): string {
  return join(dirname(auditFile), `${basename(auditFile, extname(auditFile))}.emergency.json`);
}

/**
 * A JSON file holding the state (mode 0600). Saves are atomic: a temporary file in the same
 * folder is written and fsynced, renamed over the old one, and the folder is fsynced, so a
 * crash leaves the old state or the new one, never half of either.
 */
export function fileEmergencyStore(path: string): EmergencyStore {
  return {
    async load() {
      let text: string;
      try {
        text = await readFile(path, 'utf8');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw new EmergencyStateError(`emergency state file ${path}: cannot read (${(err as NodeJS.ErrnoException).code ?? 'error'})`, err);
      }
      let raw: unknown;
      try {
        raw = JSON.parse(text);
      } catch (err) {
        throw new EmergencyStateError(`emergency state file ${path}: not valid JSON; restore it or write the intended state ({"active": true|false, "changedAt", "actor"})`, err);
      }
      const parsed = emergencyStateSchema.safeParse(raw);
      if (!parsed.success) {
        const issue = parsed.error.issues[0]!;
        throw new EmergencyStateError(`emergency state file ${path}: ${issue.path.join('.') || '(root)'}: ${issue.message}`);
      }
      const { reason, ...rest } = parsed.data;
      return reason === undefined ? rest : { ...rest, reason };
    },
    async save(state) {
      const checked = emergencyStateSchema.parse(state);
      const dir = dirname(path);
      await mkdir(dir, { recursive: true, mode: 0o700 });
      const temp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
      const file = await open(temp, 'wx', 0o600);
      try {
        await file.writeFile(`${JSON.stringify(checked)}\n`, 'utf8');
        await file.sync();
      } finally {
        await file.close();
      }
      try {
        await rename(temp, path);
      } catch (err) {
        await rm(temp, { force: true });
        throw err;
      }
      const folder = await open(dir, 'r');
      try {
        await folder.sync();
      } finally {
        await folder.close();
      }
    },
  };
}
