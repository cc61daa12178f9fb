import type { AuditSink } from '../audit/types.ts';

/** Who flipped the switch, for the audit trail. */
export interface EmergencyChange {
  /** Token name, or `config` at start. */
  actor: string;
  /** Source address of the admin request. */
  sourceIp?: string;
}

/**
 * Emergency mode: intake answers 503, consumers pause, inbox reads are refused.
 * Nothing in the queues is touched, so switching off resumes where it stopped.
 */
export class EmergencySwitch {
  #active: boolean;
  readonly #audit: AuditSink;
  readonly #service: string;
  readonly #listeners = new Set<(active: boolean) => void>();

  /** Starts in `initial` state (EMERGENCY_MODE at start). */
  constructor(initial: boolean, audit: AuditSink, service: string) {
    this.#active = initial;
    this.#audit = audit;
    this.#service = service;
  }

  /** True while emergency mode is on. */
  get active(): boolean {
    return this.#active;
  }

  /** Calls `listener` on every change (and not for the current state). */
  onChange(listener: (active: boolean) => void): void {
    this.#listeners.add(listener);
  }

  /** Switches on or off; audited; a no-op (still audited) when already in that state. */
  async set(active: boolean, change: EmergencyChange): Promise<void> {
    const changed = this.#active !== active;
    this.#active = active;
    await this.#audit.record({
      action: 'emergency.changed',
      actor: change.actor,
      resourceType: 'service',
      resourceId: this.#service,
      outcome: 'success',
      ...(change.sourceIp ? { sourceIp: change.sourceIp } : {}),
      details: { active, changed },
    });
    if (changed) for (const listener of this.#listeners) listener(active);
  }
}
