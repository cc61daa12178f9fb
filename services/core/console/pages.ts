import type { AuditEntry } from '../audit/chain.ts';
import { depthSeries, lineChart } from './chart.ts';
import { html, type Html } from './html.ts';
import type { Overview } from './overview.ts';
import type { QueueSample } from './sampler.ts';

const time = (ms: number | undefined): string => (ms === undefined ? '—' : new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z'));
const badge = (ok: boolean, yes = 'ok', no = 'failing'): Html => html`<span class="badge ${ok ? 'ok' : 'bad'}">${ok ? yes : no}</span>`;

/** The sign-in form; `notice` explains why the admin is here (failed sign-in, idle logoff). */
export function loginBody(csrf: string, notice: { kind: 'error' | 'info'; text: string } | undefined): Html {
  return html`${notice ? html`<p class="notice ${notice.kind}" id="notice" role="alert">${notice.text}</p>` : ''}
<form method="post" action="/console/login" class="card signin" autocomplete="off">
<input type="hidden" name="_csrf" value="${csrf}">
<label for="token">Admin token</label>
<input type="password" id="token" name="token" required autofocus>
<button type="submit" id="signin">Sign in</button>
<p class="hint">Use an admin token of this service. The session ends after a few idle minutes.</p>
</form>`;
}

/** The overview page: queues and their chart, DLQ and quarantine by reason, health, emergency switch, audit head. */
export function overviewBody(o: Overview, samples: readonly QueueSample[], csrf: string): Html {
  const rows = o.queues.map(
    (q) => html`<tr data-queue="${q.queue}" data-role="${q.role}"><td>${q.queue}</td><td>${q.role}</td><td class="num visible">${q.visible}</td><td class="num">${q.inFlight}</td><td class="num">${q.delayed}</td></tr>`,
  );
  const rates = Object.entries(o.rates).map(([q, r]) => html`<tr><td>${q}</td><td class="num">${r.received}</td><td class="num">${r.sent}</td></tr>`);
  const reasons = (list: Overview['quarantinedByReason'], id: string) =>
    list.length === 0
      ? html`<p class="muted" id="${id}">None since this instance started.</p>`
      : html`<table id="${id}"><tr><th>Queue</th><th>Reason</th><th>Count</th></tr>${list.map((r) => html`<tr><td>${r.queue}</td><td><code>${r.reason}</code></td><td class="num">${r.count}</td></tr>`)}</table>`;
  const ready = Object.entries(o.ready).map(([name, ok]) => html`<li>${name}: ${badge(ok)}</li>`);
  const v = o.audit.verification;
  const to = o.emergency.active ? 'off' : 'on';
  return html`<section class="grid">
<div class="card ${o.emergency.active ? 'alarm' : ''}" id="emergency">
<h2>Emergency mode</h2>
<p>Emergency mode is <strong id="emergency-state">${o.emergency.active ? 'ON' : 'off'}</strong> (since ${o.emergency.changedAt}, by ${o.emergency.actor}).</p>
<p class="hint">On: intake answers 503, consumers pause, inbox reads are refused; nothing queued is lost.</p>
<a class="button ${o.emergency.active ? '' : 'danger'}" id="emergency-switch" href="/console/emergency?to=${to}">Switch ${to}…</a>
</div>
<div class="card" id="health">
<h2>Health</h2>
<ul>
<li>SQS: ${badge(o.sqs.ok, 'reachable', 'unreachable')} ${o.sqs.code ? html`<code>${o.sqs.code}</code>` : ''} <span class="muted">read ${time(o.sqs.at)}</span></li>
<li>Crypto: ${o.crypto.mode === 'pool' ? html`worker pool, ${o.crypto.threads} threads ${badge((o.crypto.threads ?? 0) > 0)}` : html`in-thread ${badge(true)}`}</li>
${o.inbox ? html`<li id="inbox">Inbox: ${o.inbox.size} of ${o.inbox.capacity} held (${Math.round((o.inbox.size / Math.max(1, o.inbox.capacity)) * 100)}%)</li>` : ''}
${ready}
</ul>
</div>
<div class="card" id="audit-head">
<h2>Audit trail</h2>
<p>Head: seq <strong>${o.audit.seq}</strong>, hash <code class="hash">${o.audit.hash.slice(0, 16)}…</code></p>
<p>Last verification: ${v ? html`${badge(v.ok, 'verified', 'FAILED')} ${time(v.at)} <span class="muted">${v.summary}</span>` : html`<span class="muted">not yet run</span>`}</p>
<form method="post" action="/console/audit/verify"><input type="hidden" name="_csrf" value="${csrf}"><button type="submit" id="verify">Verify now</button></form>
</div>
</section>
<section class="card">
<h2>Queues</h2>
${lineChart(depthSeries(samples), o.at - 3_600_000, o.at, 'Messages per queue (waiting, in flight, delayed) over the last hour')}
<table id="queues"><tr><th>Queue</th><th>Role</th><th>Waiting</th><th>In flight</th><th>Delayed</th></tr>${rows}</table>
<h3>Rates (messages per minute)</h3>
<table id="rates"><tr><th>Queue</th><th>Received</th><th>Sent</th></tr>${rates}</table>
</section>
<section class="grid">
<div class="card"><h2>Quarantined by reason</h2>${reasons(o.quarantinedByReason, 'quarantine-reasons')}</div>
<div class="card"><h2>Dead-lettered by reason</h2>${reasons(o.deadLetteredByReason, 'dlq-reasons')}</div>
</section>`;
}

/** The confirmation step of the emergency switch. */
export function emergencyConfirmBody(to: 'on' | 'off', csrf: string, service: string): Html {
  return html`<form method="post" action="/console/emergency" class="card confirm">
<input type="hidden" name="_csrf" value="${csrf}">
<input type="hidden" name="to" value="${to}">
<p>Switch emergency mode <strong>${to}</strong> for the ${service} service?
${to === 'on' ? 'Intake will answer 503, consumers pause and inbox reads are refused until an admin switches it off.' : 'Intake and consumers resume where they stopped.'}</p>
<label><input type="checkbox" name="confirm" value="yes" id="confirm" required> I confirm</label>
<button type="submit" id="confirm-switch" class="${to === 'on' ? 'danger' : ''}">Switch ${to}</button>
<a href="/console">Cancel</a>
</form>`;
}

/** The recent audit events, as the trail holds them (identifiers hashed there; details are codes and counts). */
export function auditBody(entries: readonly AuditEntry[]): Html {
  const rows = entries.map(
    (e) => html`<tr data-action="${e.action}"><td class="num">${e.seq}</td><td>${e.ts}</td><td><code>${e.action}</code></td><td>${e.actor}</td><td>${e.resourceType}</td><td class="id">${e.resourceId ?? ''}</td><td>${e.outcome}</td><td>${e.sourceIp ?? ''}</td><td class="details">${Object.entries(e.details ?? {}).map(([k, v]) => `${k}=${String(v)}`).join(' ')}</td></tr>`,
  );
  return html`<p class="hint">The newest ${entries.length} events of this service's trail, newest first.</p>
<table id="audit"><tr><th>Seq</th><th>Time</th><th>Action</th><th>Actor</th><th>Resource</th><th>Id</th><th>Outcome</th><th>Source</th><th>Details</th></tr>${rows}</table>`;
}
