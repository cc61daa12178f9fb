import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ALERT_CONDITIONS } from '../../services/core/alerts/catalogue.ts';
import { startStack, type TestStack } from '../helpers/stack.ts';

// The shipped Prometheus rules and Grafana dashboard against the code: the same alert names,
// severities and runbooks as the built-in notifications, and only metrics a running service
// exports. (`promtool check rules` and `promtool test rules` run in .ci/run.)
interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

const root = new URL('../../', import.meta.url);
const read = (path: string) => readFile(new URL(path, root), 'utf8');

let rules: Rule[];
let dashboardExprs: string[];
let stack: TestStack;

beforeAll(async () => {
  const doc = parse(await read('deploy/prometheus/care-relay.rules.yml')) as { groups: Array<{ rules: Rule[] }> };
  rules = doc.groups.flatMap((g) => g.rules);
  const dashboard = JSON.parse(await read('deploy/grafana/care-relay.dashboard.json')) as { panels: Array<{ targets: Array<{ expr: string }> }> };
  dashboardExprs = dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr));
  stack = await startStack();
});
afterAll(async () => {
  await stack?.stop();
});

/** Metric names a PromQL expression uses (not recording rules, which hold a colon). */
function metricsIn(expr: string): string[] {
  return [...expr.matchAll(/\b(care_relay_[a-z0-9_]+)/g)].map((m) => m[1]!);
}

describe('Prometheus rules', () => {
  it('alert for alert, the rules are the built-in conditions: name, severity, runbook', () => {
    const alerts = rules.filter((r) => r.alert);
    expect(alerts.map((r) => r.alert).sort()).toEqual(Object.keys(ALERT_CONDITIONS).sort());
    for (const r of alerts) {
      const c = ALERT_CONDITIONS[r.alert as keyof typeof ALERT_CONDITIONS];
      expect(r.labels?.severity, r.alert).toBe(c.severity);
      expect(r.annotations?.runbook_url, r.alert).toBe(c.runbook);
      expect(r.annotations?.summary, r.alert).toBeTruthy();
    }
  });

  it('every runbook link names a section of docs/deploy.md', async () => {
    const deploy = await read('docs/deploy.md');
    const anchors = new Set([...deploy.matchAll(/^#+ (.+)$/gm)].map((m) => m[1]!.toLowerCase().trim().replace(/[^a-z0-9 -]/g, '').replaceAll(' ', '-')));
    for (const c of Object.values(ALERT_CONDITIONS)) expect(anchors, c.runbook).toContain(c.runbook.split('#')[1]);
  });

  it('every metric the rules and the dashboard use is exported by a running service', async () => {
    const exported = new Set<string>();
    for (const server of [stack.iface.server, stack.app.server]) {
      const body = (await server.inject({ method: 'GET', url: '/metrics' })).body;
      for (const m of body.matchAll(/^# TYPE (\S+) /gm)) exported.add(m[1]!);
    }
    const used = new Set([...rules.flatMap((r) => metricsIn(r.expr)), ...dashboardExprs.flatMap(metricsIn)]);
    expect(used.size).toBeGreaterThan(10);
    expect([...used].filter((m) => !exported.has(m))).toEqual([]);
  });

  it('recording rules the alerts and the dashboard use are defined', () => {
    const recorded = new Set(rules.flatMap((r) => (r.record ? [r.record] : [])));
    const usedRecordings = [...rules.map((r) => r.expr), ...dashboardExprs].flatMap((e) => [...e.matchAll(/\b(care_relay:[a-z0-9_:]+)/g)].map((m) => m[1]!));
    expect(usedRecordings.filter((r) => !recorded.has(r))).toEqual([]);
  });
});
