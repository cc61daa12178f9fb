import { describe, expect, it } from 'vitest';
import { evaluate } from '../../../services/core/alerts/evaluate.ts';
import type { AlertSnapshot, QueueDepth } from '../../../services/core/alerts/snapshot.ts';
import { DEFAULT_THRESHOLDS } from '../../../services/core/alerts/thresholds.ts';

const NOW = Date.parse('2026-11-30T12:00:00Z');

function healthy(over: Partial<AlertSnapshot> = {}): AlertSnapshot {
  return {
    at: NOW,
    queues: [],
    oldestAgeSeconds: {},
    emergency: false,
    auditFailureAgeSeconds: Infinity,
    keys: [{ role: 'own', fingerprint: 'AAAA', expiresAt: Infinity }],
    ready: true,
    notReadySeconds: 0,
    ...over,
  };
}

function depth(queue: string, role: QueueDepth['role'], visible: number, inFlight = 0): QueueDepth {
  return { queue, role, visible, inFlight, delayed: 0 };
}

const names = (s: AlertSnapshot) => evaluate(s, DEFAULT_THRESHOLDS).active.map((f) => `${f.condition}:${f.subject}:${f.severity}`);

describe('alert conditions', () => {
  it('a healthy snapshot holds no condition', () => {
    expect(names(healthy({ emr: { failing: false, seconds: 0 }, inbox: { size: 10, capacity: 100 } }))).toEqual([]);
  });

  it('a DLQ or quarantine with messages (visible or in flight) holds, per queue', () => {
    const s = healthy({
      queues: [depth('app-to-interface', 'dlq', 0, 1), depth('interface-to-app', 'quarantine', 2), depth('interface-to-app', 'dlq', 0), depth('interface-to-app', 'main', 900)],
    });
    expect(names(s)).toEqual(['CareRelayDeadLetterQueueNotEmpty:app-to-interface:warning', 'CareRelayQuarantineNotEmpty:interface-to-app:warning']);
    expect(evaluate(s, DEFAULT_THRESHOLDS).active[1]!.facts).toEqual({ messages: 2 });
  });

  it('the SMS redaction DLQ is its own critical condition (a body may still be on SignalWire), not a plain DLQ alert', () => {
    expect(names(healthy({ queues: [depth('app-sms-redaction', 'dlq', 1)] }))).toEqual(['CareRelaySmsUnredactedPastWindow:app-sms-redaction:critical']);
  });

  it('the redaction backlog holds at the threshold, counting in-flight jobs, not delayed fallback jobs', () => {
    const t = { ...DEFAULT_THRESHOLDS, redactionBacklog: 10 };
    const at = (visible: number, inFlight: number, delayed: number) =>
      evaluate(healthy({ queues: [{ queue: 'app-sms-redaction', role: 'main', visible, inFlight, delayed }] }), t).active.map((f) => f.condition);
    expect(at(9, 0, 5000)).toEqual([]);
    expect(at(6, 4, 0)).toEqual(['CareRelaySmsRedactionBacklog']);
  });

  it('an unmeasured queue poll judges no queue condition (an outage must not clear them)', () => {
    const e = evaluate(healthy({ queues: undefined, oldestAgeSeconds: undefined }), DEFAULT_THRESHOLDS);
    expect(e.evaluated.has('CareRelayQuarantineNotEmpty')).toBe(false);
    expect(e.evaluated.has('CareRelayQueueBacklogOld')).toBe(false);
    expect(e.evaluated.has('CareRelayServiceNotReady')).toBe(true);
  });

  it('old backlog, failing EMR, full inbox, emergency, audit failure and not-ready hold at their thresholds', () => {
    const s = healthy({
      oldestAgeSeconds: { 'app-to-interface': 900, 'interface-to-app': 899 },
      emr: { failing: true, seconds: 300 },
      inbox: { size: 90, capacity: 100 },
      emergency: true,
      auditFailureAgeSeconds: 12,
      ready: false,
      notReadySeconds: 120,
    });
    expect(names(s)).toEqual([
      'CareRelayQueueBacklogOld:app-to-interface:critical',
      'CareRelayEmrDeliveryFailing:emr:critical',
      'CareRelayInboxNearCapacity:inbox:warning',
      'CareRelayEmergencyModeOn:service:critical',
      'CareRelayAuditTrailFailing:audit:critical',
      'CareRelayServiceNotReady:service:critical',
    ]);
    expect(names(healthy({ emr: { failing: true, seconds: 299 }, inbox: { size: 89, capacity: 100 }, ready: false, notReadySeconds: 119, auditFailureAgeSeconds: 300 }))).toEqual([]);
  });

  it('a zero threshold still needs the condition itself: healthy EMR and a ready service hold nothing', () => {
    const t = { ...DEFAULT_THRESHOLDS, emrFailingSeconds: 0, notReadySeconds: 0 };
    expect(evaluate(healthy({ emr: { failing: false, seconds: 0 } }), t).active).toEqual([]);
    expect(evaluate(healthy({ emr: { failing: true, seconds: 0 }, ready: false }), t).active.map((f) => f.condition)).toEqual(['CareRelayEmrDeliveryFailing', 'CareRelayServiceNotReady']);
  });

  it('a key expiring within the window is a warning, an expired one critical; a key without expiry never', () => {
    const day = 86_400_000;
    const s = healthy({
      keys: [
        { role: 'own', fingerprint: 'OWN', expiresAt: NOW + 29 * day },
        { role: 'peer', fingerprint: 'PEER', expiresAt: NOW - 1 },
        { role: 'peer', fingerprint: 'LATER', expiresAt: NOW + 31 * day },
        { role: 'peer', fingerprint: 'NEVER', expiresAt: Infinity },
      ],
    });
    expect(names(s)).toEqual(['CareRelayKeyExpiringSoon:OWN:warning', 'CareRelayKeyExpiringSoon:PEER:critical']);
    expect(evaluate(s, DEFAULT_THRESHOLDS).active[0]!.facts).toEqual({ role: 'own', daysLeft: 29 });
  });
});
