import type { CallbackSender } from './callbacks.ts';
import type { FakeMessage, FakeStatus, FakeStore, Outcome } from './store.ts';

/** Options of the status lifecycle. */
export interface LifecycleOptions {
  /** Milliseconds between two status steps when timers drive the lifecycle. */
  stepMs: number;
  /** When true no timer runs: tests advance messages with `step()`. */
  manual: boolean;
}

/** The next status of a message given its outcome, or undefined when it is final for that outcome. */
export function nextStatus(status: FakeStatus, outcome: Outcome): FakeStatus | undefined {
  switch (status) {
    case 'queued':
      return outcome === 'failed' ? 'failed' : 'sending';
    case 'sending':
      return 'sent';
    case 'sent':
      if (outcome === 'delivered' || outcome === 'hold') return 'delivered';
      if (outcome === 'undelivered') return 'undelivered';
      return undefined;
    default:
      return undefined;
  }
}

/** Drives messages queued → sending → sent → delivered/undelivered/failed, by timer or by hand. */
export class Lifecycle {
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly store: FakeStore;
  private readonly callbacks: CallbackSender;
  private readonly now: () => Date;
  /** Current options; `stepMs` and `manual` may be changed at run time. */
  readonly options: LifecycleOptions;

  constructor(store: FakeStore, callbacks: CallbackSender, now: () => Date, options: LifecycleOptions) {
    this.store = store;
    this.callbacks = callbacks;
    this.now = now;
    this.options = options;
  }

  /** Starts the timer of a newly created message. */
  started(msg: FakeMessage): void {
    this.schedule(msg);
  }

  /** Advances one message by one status; returns its new status, or undefined when it cannot move. */
  step(sid: string): FakeStatus | undefined {
    const msg = this.store.messages.get(sid);
    if (!msg) return undefined;
    // A held message moves only by hand.
    const next = nextStatus(msg.status, msg.outcome);
    if (!next) return undefined;
    this.apply(msg, next);
    return next;
  }

  /** Advances a message until its lifecycle ends. */
  settle(sid: string): FakeStatus | undefined {
    let last: FakeStatus | undefined;
    for (let s = this.step(sid); s; s = this.step(sid)) last = s;
    return last ?? this.store.messages.get(sid)?.status;
  }

  /** Cancels every timer. */
  stop(): void {
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }

  /** Drops a message's timer (it was deleted). */
  forget(sid: string): void {
    const t = this.timers.get(sid);
    if (t) clearTimeout(t);
    this.timers.delete(sid);
  }

  private apply(msg: FakeMessage, next: FakeStatus): void {
    const t = this.now();
    msg.status = next;
    msg.dateUpdated = t;
    if (next === 'sent') msg.dateSent = t;
    if (next === 'failed') msg.errorCode = 30008;
    if (next === 'undelivered') msg.errorCode = 30005;
    this.callbacks.notify(msg);
    this.schedule(msg);
  }

  private schedule(msg: FakeMessage): void {
    this.forget(msg.sid);
    if (this.options.manual || msg.outcome === 'hold') return;
    if (!nextStatus(msg.status, msg.outcome)) return;
    const timer = setTimeout(() => {
      this.timers.delete(msg.sid);
      const live = this.store.messages.get(msg.sid);
      const next = live && nextStatus(live.status, live.outcome);
      if (live && next) this.apply(live, next);
    }, this.options.stepMs);
    timer.unref();
    this.timers.set(msg.sid, timer);
  }
}
