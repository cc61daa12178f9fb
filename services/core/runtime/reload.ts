import { basename } from 'node:path';
import type { Logger } from 'pino';
import type { AuditEvent, AuditSink } from '../audit/types.ts';

/** One reloadable file: its path and the step that validates it and returns how to apply it. */
export interface ReloadableFile {
  /** Path of the file (only its name reaches the log and the audit trail). */
  file: string;
  /** Reads and validates the file; returns the swap; throws (changing nothing) when invalid. */
  prepare(): () => void;
}

/**
 * Reloads every file or none (SIGHUP): each file is read and validated first, and only
 * when all of them are valid are they swapped in together. Success is audited as
 * `config.reloaded`, failure as `config.reload_failed` with the failing file's name and
 * error code (never a value from it), then the error is rethrown. Synchronous, so no request
 * sees half a reload; the audit line is written in the background (a failed write is logged).
 */
export function reloadAll(files: readonly ReloadableFile[], deps: { audit: AuditSink; logger: Logger; service: string }): void {
  const record = (event: AuditEvent): void => {
    deps.audit.record(event).catch((err: unknown) => deps.logger.error({ code: (err as { code?: unknown }).code, action: event.action }, 'audit write failed'));
  };
  const names = files.map((f) => basename(f.file)).join(',');
  const swaps: (() => void)[] = [];
  for (const f of files) {
    try {
      swaps.push(f.prepare());
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      const reason = typeof code === 'string' ? code : 'invalid';
      deps.logger.error({ file: basename(f.file), code: reason }, 'config reload failed; nothing changed, every file keeps its previous content');
      record({
        action: 'config.reload_failed',
        actor: deps.service,
        resourceType: 'tokens',
        resourceId: basename(f.file),
        outcome: 'failure',
        details: { files: names, reason },
      });
      throw err;
    }
  }
  for (const swap of swaps) swap();
  deps.logger.info({ files: names }, 'tokens reloaded');
  record({ action: 'config.reloaded', actor: deps.service, resourceType: 'tokens', outcome: 'success', details: { files: names } });
}
