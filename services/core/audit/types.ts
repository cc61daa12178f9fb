/** Actions the audit trail records (DESIGN "Security and audit"). */
export type AuditAction =
  | 'auth.success'
  | 'auth.failure'
  | 'auth.forbidden'
  | 'submission.accepted'
  | 'callback.delivered'
  | 'callback.stopped'
  | 'callback.dead-lettered'
  | 'callback.dropped'
  | 'message.relayed'
  | 'message.received'
  | 'message.delivered'
  | 'message.dead-lettered'
  | 'message.quarantined'
  | 'message.duplicate'
  | 'receipt.applied'
  | 'receipt.unknown'
  | 'message.redriven'
  | 'message.purged'
  | 'inbox.read'
  | 'inbox.acked'
  | 'sms.sending'
  | 'sms.sent'
  | 'sms.redacted'
  | 'sms.redaction-failed'
  | 'sms.callback_unknown'
  | 'sms.sweep'
  | 'key.loaded'
  | 'emergency.changed'
  | 'config.reloaded'
  | 'config.reload_failed'
  | 'audit.override'
  | 'audit.torn_tail'
  | 'audit.witnessed'
  | 'alert.notified'
  | 'console.viewed'
  | 'console.action'
  | 'console.signed-out'
  | 'audit.verified';

/** One audit event as a caller records it; the trail adds time, sequence and chain hash. */
export interface AuditEvent {
  /** What happened. */
  action: AuditAction;
  /** Who did it: a token name, a partner id, a service name (never a secret). */
  actor: string;
  /** The kind of thing acted on: `envelope`, `inbox-record`, `sms`, `key`, ... */
  resourceType: string;
  /** Identifier of that thing; envelope ids are logged as-is, PHI-bearing ids must be hashed by the caller via hashId. */
  resourceId?: string;
  /** `success` or `failure`. */
  outcome: 'success' | 'failure';
  /** Source address of the request, when there is one. */
  sourceIp?: string;
  /** Extra non-PHI facts (reason code, queue, counts). */
  details?: Record<string, string | number | boolean>;
}

/** Where audit events go; the real one is a hash-chained JSON-lines file (auditLog.ts). */
export interface AuditSink {
  /** Appends one event; resolves when it is durably written. */
  record(event: AuditEvent): Promise<void>;
}

/** An audit sink that drops everything: for tests and tools that audit nothing. */
export const nullAudit: AuditSink = { record: async () => {} };
