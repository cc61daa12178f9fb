import type { AuditSink } from '../audit/types.ts';
import type { EmergencyState, EmergencyStore } from './emergencyStore.ts';

/** Who flipped the switch, for the audit trail. */
export interface EmergencyChange {
  /** Token name, or `config` at start. */
  actor: string;
  /** Source address of the admin request. */
  sourceIp?: string;
  /** Why (persisted with the state; never logged or audited: it is free text). */
  reason?: string;
}

/**
 * Emergency mode: intake answers 503, consumers pause, inbox reads are refused.
 * Nothing in the queues is touched, so switching off resumes where it stopped.
 * Each switch is persisted in the store, so it survives a restart.
 */
export class EmergencySwitch {
  #state: EmergencyState;
  readonly #audit: AuditSink;
  readonly #service: string;
  readonly #store: EmergencyStore | undefined;
  readonly #listeners = new Set<(active: boolean) => void>();

  /** Starts in `initial` (the persisted state, or off); `store` keeps every later switch. */
  constructor(initial: boolean | EmergencyState, audit: AuditSink, service: string, store?: EmergencyStore) {
    this.#state = typeof initial === 'boolean' ? { active: initial, changedAt: new Date().toISOString(), actor: 'default' } : initial;
    this.#audit = audit;
    this.#service = service;
    this.#store = store;
  }

  /** True while emergency mode is on. */
  get active(): boolean {
    return this.#state.active;
  }

  /** The current state: position, when, by whom. */
  get state(): EmergencyState {
    return { ...this.#state };
  }

  /** Calls `listener` on every change (and not for the current state). */
  onChange(listener: (active: boolean) => void): void {
    this.#listeners.add(listener);
  }

  /**
   * Switches on or off; persisted and audited; a no-op (still persisted and audited) when
   * already in that state. Fails closed: switching on takes effect even if saving fails (the
   * error is still thrown); switching off takes effect only once saved.
   */
  async set(active: boolean, change: EmergencyChange): Promise<void> {
    const changed = this.#state.active !== active;
    const next: EmergencyState = { active, changedAt: new Date().toISOString(), actor: change.actor, ...(change.reason ? { reason: change.reason } : {}) };
    const apply = (): void => {
      this.#state = next;
      if (changed) for (const listener of this.#listeners) listener(active);
    };
    if (active) apply();
    try {
      await this.#store?.save(next);
    } catch (err) {
      await this.#audit.record({
        action: 'emergency.changed',
        actor: change.actor,
        resourceType: 'service',
        resourceId: this.#service,
        outcome: 'failure',
        ...(change.sourceIp ? { sourceIp: change.sourceIp } : {}),
        details: { active, changed, reason: 'not-persisted' },
      });
      throw err;
    }
    if (!active) apply();
    await this.#audit.record({
      action: 'emergency.changed',
      actor: change.actor,
      resourceType: 'service',
      resourceId: this.#service,
      outcome: 'success',
      ...(change.sourceIp ? { sourceIp: change.sourceIp } : {}),
      details: { active, changed },
    });
  }
}
