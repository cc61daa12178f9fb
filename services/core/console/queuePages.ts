import type { SQSClient } from '@aws-sdk/client-sqs';
import type { AuditSink } from '../audit/types.ts';
import { httpErrors } from '../http/errors.ts';
import { listHeld, purgeHeld, REASON_MAX_RECEIVES, redriveHeld, type HeldActionResult, type HeldMessageInfo, type HoldRole } from '../ops/index.ts';
import type { ResolvedQueue } from '../transport/queues.ts';
import { html, type Html } from './html.ts';
import type { ConsolePages } from './plugin.ts';

/** Options for {@link queuePages}. */
export interface QueuePagesOptions {
  /** SQS client. */
  sqs: SQSClient;
  /** The queues this service consumes (their DLQ and quarantine queues are its to inspect and act on). */
  queues: Readonly<Record<string, ResolvedQueue>>;
  /** The audit trail: one line per message redriven or purged. */
  audit: AuditSink;
}

/**
 * The reason as the console shows it: a relay code (`CR_*`) or SQS's `max-receives`. Anything else
 * in the clear `cr-reason` attribute was not written by the relay (a hostile or broken sender could
 * put anything there, PHI included), so it is not echoed.
 */
export function shownReason(reason: string): string {
  return /^CR_[A-Z0-9_]{1,76}$/.test(reason) || reason === REASON_MAX_RECEIVES ? reason : 'CR_REASON_INVALID';
}

const TITLES: Record<HoldRole, string> = { dlq: 'Dead letters', quarantine: 'Quarantine' };
const LIST_LIMIT = 100;

function heldTable(role: HoldRole, queue: string, held: readonly HeldMessageInfo[], csrf: string): Html {
  if (held.length === 0) return html`<p class="muted empty" data-queue="${queue}">Nothing held.</p>`;
  const reasons = new Map<string, number>();
  for (const m of held) reasons.set(shownReason(m.reason), (reasons.get(shownReason(m.reason)) ?? 0) + 1);
  return html`<p class="reasons">${[...reasons].map(([r, n]) => html`<code>${r}</code> × ${n} `)}</p>
<form method="post" action="/console/held/${role}/${queue}" class="held">
<input type="hidden" name="_csrf" value="${csrf}">
<table class="held" data-queue="${queue}" data-role="${role}">
<tr><th></th><th>Envelope id</th><th>Reason</th><th>Signer</th><th>Sent</th><th>First receive</th><th>Last receive</th><th>Receives</th></tr>
${held.map(
  (m) => html`<tr data-envelope-id="${m.envelopeId ?? ''}"><td><input type="checkbox" name="ids" value="${m.messageId}" aria-label="select ${m.envelopeId ?? m.messageId}"></td><td class="id">${m.envelopeId ?? '(none)'}</td><td><code>${shownReason(m.reason)}</code></td><td class="id">${m.signer ?? '—'}</td><td>${m.sentAt ?? '—'}</td><td>${m.firstReceiveAt ?? '—'}</td><td>${m.lastReceiveAt ?? '—'}</td><td class="num">${m.receiveCount}</td></tr>`,
)}
</table>
<div class="actions">
<label>Reason <select name="reason"><option value="">any</option>${[...reasons.keys()].filter((r) => r !== 'CR_REASON_INVALID').map((r) => html`<option value="${r}">${r}</option>`)}</select></label>
<button type="submit" name="action" value="redrive" class="redrive">Redrive…</button>
<button type="submit" name="action" value="purge" class="danger purge">Purge…</button>
<span class="hint">Acts on the ticked messages, or on every message of the chosen reason when none is ticked. You confirm on the next page.</span>
</div>
</form>`;
}

function resultBody(result: HeldActionResult, confirm: { csrf: string; ids: readonly string[]; reason: string | undefined } | undefined): Html {
  const verb = result.action === 'redrive' ? 'Redrive' : 'Purge';
  const rows = result.items.map((i) => html`<tr><td class="id">${i.envelopeId ?? i.messageId}</td><td><code>${shownReason(i.reason)}</code></td><td class="outcome">${i.outcome}${i.code ? html` <code>${i.code}</code>` : ''}</td></tr>`);
  const summary = result.dryRun
    ? html`<p id="summary">${verb} would act on <strong>${result.items.length}</strong> of ${result.scanned} held messages in the ${result.role} of ${result.queue}.</p>`
    : html`<p id="summary">${verb}: <strong>${result.items.filter((i) => i.outcome === 'done').length}</strong> done, ${result.items.filter((i) => i.outcome === 'failed').length} failed (of ${result.scanned} looked at).</p>`;
  return html`${summary}
<table id="result"><tr><th>Envelope id</th><th>Reason</th><th>Outcome</th></tr>${rows}</table>
${confirm && result.items.length > 0
  ? html`<form method="post" action="/console/held/${result.role}/${result.queue}" class="card confirm">
<input type="hidden" name="_csrf" value="${confirm.csrf}">
<input type="hidden" name="action" value="${result.action}">
${confirm.ids.map((id) => html`<input type="hidden" name="ids" value="${id}">`)}
${confirm.reason ? html`<input type="hidden" name="reason" value="${confirm.reason}">` : ''}
<label><input type="checkbox" name="confirm" value="yes" id="confirm" required> I confirm: ${result.action === 'purge' ? 'delete these messages for good' : 'send these messages back to their queue'}</label>
<button type="submit" id="confirm-action" class="${result.action === 'purge' ? 'danger' : ''}">${verb} ${result.items.length}</button>
<a href="/console/${result.role}">Cancel</a>
</form>`
  : html`<p><a href="/console/${result.role}" id="back">Back to ${TITLES[result.role]}</a></p>`}`;
}

const list = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : typeof v === 'string' ? [v] : []);

/**
 * The DLQ and quarantine pages: held messages of each consumed queue as metadata (never a body),
 * and redrive / purge through the queue operations the CLI uses (a dry run shows what would be
 * done and asks for confirmation; the action audits one line per message with the admin as actor).
 */
export function queuePages(options: QueuePagesOptions): ConsolePages {
  const deps = { client: options.sqs, queues: options.queues };
  return async (app, ctx) => {
    for (const role of ['dlq', 'quarantine'] as const) {
      app.get(`/console/${role}`, { config: { public: true } }, async (request, reply) => {
        const sections: Html[] = [];
        for (const queue of Object.keys(options.queues)) {
          const held = await listHeld(deps, { queue, role, limit: LIST_LIMIT });
          sections.push(html`<section class="card"><h2>${queue}</h2>${heldTable(role, queue, held, ctx.session(request).csrf)}</section>`);
        }
        const body = html`<p class="hint">Metadata only: envelope id, reason code, signer fingerprint, times and receive count. Showing up to ${LIST_LIMIT} per queue, oldest first.</p>${sections}`;
        return reply.type('text/html; charset=utf-8').send(ctx.render(request, { title: TITLES[role], nav: role }, body));
      });
    }

    app.post<{ Params: { role: string; queue: string } }>('/console/held/:role/:queue', { config: { public: true } }, async (request, reply) => {
      const { role, queue } = request.params;
      if ((role !== 'dlq' && role !== 'quarantine') || !Object.hasOwn(options.queues, queue)) {
        throw httpErrors.validation('unknown hold queue: expected /console/held/dlq|quarantine/<a queue this service consumes>');
      }
      const form = request.body as Record<string, unknown>;
      const action = form.action === 'purge' ? 'purge' : form.action === 'redrive' ? 'redrive' : undefined;
      if (!action) throw httpErrors.validation('action: expected redrive or purge');
      const ids = list(form.ids);
      const reason = typeof form.reason === 'string' && form.reason !== '' ? form.reason : undefined;
      // Only a reason code is accepted, and never echoed otherwise: a form field could carry anything.
      if (reason !== undefined && shownReason(reason) !== reason) throw httpErrors.validation('reason: expected a reason code such as CR_ENVELOPE_SIGNATURE_INVALID');
      const confirmed = form.confirm === 'yes';
      const session = ctx.session(request);
      const run = action === 'redrive' ? redriveHeld : purgeHeld;
      const result = await run(deps, {
        queue,
        role,
        ...(ids.length > 0 ? { ids } : {}),
        ...(reason ? { reasons: [reason] } : {}),
        dryRun: !confirmed,
        audit: options.audit,
        actor: session.actor,
        sourceIp: request.ip,
      });
      const title = `${action === 'redrive' ? 'Redrive' : 'Purge'} · ${TITLES[role]}`;
      // The confirmation carries the ids of the messages found, not what the form sent.
      const found = ids.length > 0 ? result.items.map((i) => i.messageId) : [];
      const body = resultBody(result, confirmed ? undefined : { csrf: session.csrf, ids: found, reason });
      return reply.type('text/html; charset=utf-8').send(ctx.render(request, { title, nav: role }, body));
    });
  };
}
