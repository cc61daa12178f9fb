/** HTML-escapes text for element content and double-quoted attribute values. */
export function esc(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** Markup that is already safe (built by this module's helpers from escaped parts). */
export class Html {
  /** The markup. */
  readonly value: string;
  constructor(value: string) {
    this.value = value;
  }
  /** The markup. */
  toString(): string {
    return this.value;
  }
}

/** Tagged template: interpolated values are escaped unless they are {@link Html} (or arrays of it). */
export function html(strings: TemplateStringsArray, ...values: unknown[]): Html {
  let out = strings[0]!;
  values.forEach((v, i) => {
    out += render(v) + strings[i + 1]!;
  });
  return new Html(out);
}

function render(v: unknown): string {
  if (v instanceof Html) return v.value;
  if (Array.isArray(v)) return v.map(render).join('');
  if (v === undefined || v === null || v === false) return '';
  return esc(v);
}

/** What every signed-in page shows in its frame. */
export interface PageFrame {
  /** Service name (`interface`, `app`). */
  service: string;
  /** Page title. */
  title: string;
  /** Signed-in admin, or undefined on the sign-in page. */
  actor?: string | undefined;
  /** CSRF token for the sign-out form. */
  csrf?: string | undefined;
  /** Idle timeout in seconds: console.js checks the session and leaves when it has ended. */
  idleSeconds?: number | undefined;
  /** Which navigation entry is current. */
  nav?: 'overview' | 'dlq' | 'quarantine' | 'audit' | undefined;
}

const NAV: Array<[NonNullable<PageFrame['nav']>, string, string]> = [
  ['overview', 'Overview', '/console'],
  ['dlq', 'Dead letters', '/console/dlq'],
  ['quarantine', 'Quarantine', '/console/quarantine'],
  ['audit', 'Audit trail', '/console/audit'],
];

/** A whole page: own CSS and JS only (no inline script or style), navigation and sign-out when signed in. */
export function page(frame: PageFrame, body: Html): string {
  const signedIn = frame.actor !== undefined;
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${frame.title} · care-relay ${frame.service}</title>
<link rel="stylesheet" href="/console/assets/console.css">
<script src="/console/assets/console.js" defer></script>
</head>
<body${signedIn ? html` data-idle-seconds="${frame.idleSeconds ?? 300}"` : ''}>
<header>
<span class="brand">care-relay <strong>${frame.service}</strong></span>
${signedIn
  ? html`<nav>${NAV.map(([key, label, href]) => html`<a href="${href}"${key === frame.nav ? html` aria-current="page"` : ''}>${label}</a>`)}</nav>
<form method="post" action="/console/logout" class="signout"><input type="hidden" name="_csrf" value="${frame.csrf}"><span id="actor">${frame.actor}</span> <button type="submit">Sign out</button></form>`
  : ''}
</header>
<main>
<h1>${frame.title}</h1>
${body}
</main>
</body>
</html>
`.value;
}
