import type { StateTable } from './table.ts';

/** Emergency mode as persisted (structurally the runtime's EmergencyState). */
export interface EmergencyState {
  /** Whether emergency mode is on. */
  active: boolean;
  /** When it last changed (ISO 8601). */
  changedAt: string;
  /** Who changed it. */
  actor: string;
  /** Why, when given. */
  reason?: string;
}

/** Where emergency mode is kept (structurally the runtime's EmergencyStore). */
export interface EmergencyStore {
  /** The saved state, or undefined when none was saved. */
  load(): Promise<EmergencyState | undefined>;
  /** Saves the state (last write wins). */
  save(state: EmergencyState): Promise<void>;
}

/** Emergency mode in the service's state table (item `emergency`), shared by every instance. */
export function dynamoEmergencyStore(table: StateTable): EmergencyStore {
  return {
    async load() {
      const item = await table.get('emergency');
      if (!item || typeof item.active !== 'boolean' || typeof item.changedAt !== 'string' || typeof item.actor !== 'string') return undefined;
      return { active: item.active, changedAt: item.changedAt, actor: item.actor, ...(typeof item.reason === 'string' ? { reason: item.reason } : {}) };
    },
    async save(state) {
      await table.put({ pk: 'emergency', active: state.active, changedAt: state.changedAt, actor: state.actor, ...(state.reason === undefined ? {} : { reason: state.reason }) });
    },
  };
}
