import { html, type Html } from './html.ts';
import type { QueueSample } from './sampler.ts';

/** One line of the chart: a series of (epoch ms, value) points. */
export interface ChartSeries {
  /** Legend text (a queue name and role: metadata only). */
  label: string;
  /** Points, oldest first. */
  points: Array<[number, number]>;
}

const W = 640;
const H = 180;
const PAD = { left: 40, right: 10, top: 10, bottom: 22 };

/** The depth series of the chart: waiting + in flight per queue role, one line per physical queue. */
export function depthSeries(samples: readonly QueueSample[]): ChartSeries[] {
  const byKey = new Map<string, ChartSeries>();
  for (const s of samples) {
    for (const d of s.depths ?? []) {
      const label = d.role === 'main' ? d.queue : `${d.queue}-${d.role}`;
      const series = byKey.get(label) ?? { label, points: [] };
      series.points.push([s.at, d.visible + d.inFlight + d.delayed]);
      byKey.set(label, series);
    }
  }
  return [...byKey.values()];
}

/**
 * Draws series as an inline SVG line chart over `[from, to]` (no script, no inline style: the
 * colours come from classes in console.css, so the strict Content-Security-Policy holds).
 */
export function lineChart(series: readonly ChartSeries[], from: number, to: number, title: string): Html {
  const max = Math.max(1, ...series.flatMap((s) => s.points.map((p) => p[1])));
  const span = Math.max(1, to - from);
  const x = (t: number): number => PAD.left + ((t - from) / span) * (W - PAD.left - PAD.right);
  const y = (v: number): number => H - PAD.bottom - (v / max) * (H - PAD.top - PAD.bottom);
  const f = (n: number): string => n.toFixed(1);
  const lines = series
    .filter((s) => s.points.length > 0)
    .map((s, i) => {
      const pts = s.points.filter((p) => p[0] >= from).map((p) => `${f(x(p[0]))},${f(y(p[1]))}`).join(' ');
      return html`<polyline class="series s${i % 6}" points="${pts}"><title>${s.label}</title></polyline>`;
    });
  const legend = series.map((s, i) => html`<li><span class="swatch s${i % 6}"></span>${s.label}: ${s.points.at(-1)?.[1] ?? 0}</li>`);
  const minutes = Math.round(span / 60_000);
  return html`<figure class="chart">
<svg viewBox="0 0 ${W} ${H}" role="img" aria-label="${title}" xmlns="http://www.w3.org/2000/svg">
<line class="axis" x1="${PAD.left}" y1="${H - PAD.bottom}" x2="${W - PAD.right}" y2="${H - PAD.bottom}"/>
<line class="axis" x1="${PAD.left}" y1="${PAD.top}" x2="${PAD.left}" y2="${H - PAD.bottom}"/>
<text class="tick" x="${PAD.left - 4}" y="${PAD.top + 8}" text-anchor="end">${max}</text>
<text class="tick" x="${PAD.left - 4}" y="${H - PAD.bottom}" text-anchor="end">0</text>
<text class="tick" x="${PAD.left}" y="${H - 6}">-${minutes} min</text>
<text class="tick" x="${W - PAD.right}" y="${H - 6}" text-anchor="end">now</text>
${lines}
</svg>
<figcaption>${title}</figcaption>
<ul class="legend">${legend}</ul>
</figure>`;
}
