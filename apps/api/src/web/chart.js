// The delivery chart of the email log page: inline SVG drawn from GET /v1/email-logs/stats,
// no library, no inline style (the page's CSP allows none). Colours come from styles.css by class.

const SVG = 'http://www.w3.org/2000/svg';
const DAY_MS = 86_400_000;

/** The series, in the order of the legend and the table; `funnel` keys of the stats API. */
export const SERIES = [
  ['sent', 'Sent'],
  ['delivered', 'Delivered'],
  ['opened', 'Opened'],
  ['clicked', 'Clicked'],
  ['bounced', 'Bounced'],
  ['complained', 'Complained'],
  ['failed', 'Failed'],
];

/** The rates shown beside the chart: `rates` keys of the stats API. */
export const RATES = [
  ['delivery', 'Delivery rate'],
  ['open', 'Open rate'],
  ['bounce', 'Bounce rate'],
  ['complaint', 'Complaint rate'],
];

/** Every UTC day from `since` to `until` (YYYY-MM-DD), inclusive. */
export function daysBetween(since, until) {
  const out = [];
  for (let t = Date.parse(`${since}T00:00:00Z`); t <= Date.parse(`${until}T00:00:00Z`); t += DAY_MS) {
    out.push(new Date(t).toISOString().slice(0, 10));
  }
  return out;
}

/** Rows of the chart: one per day of the range, zeros where the API has no bucket. */
export function chartRows(stats) {
  const byDay = new Map(stats.days.map((d) => [d.day, d.funnel]));
  return daysBetween(stats.since, stats.until).map((day) => ({
    day,
    values: Object.fromEntries(SERIES.map(([key]) => [key, byDay.get(day)?.[key] ?? 0])),
  }));
}

/** Up to about five round ticks (1, 2 or 5 × 10^k) from 0 past `max`. */
export function ticks(max) {
  if (max <= 0) return [0, 1];
  const raw = max / 4;
  const pow = 10 ** Math.floor(Math.log10(raw));
  // Whole emails: never a step below one.
  const step = Math.max(
    1,
    [1, 2, 5, 10].map((m) => m * pow).find((s) => s >= raw),
  );
  const out = [];
  for (let v = 0; v < max + step; v += step) out.push(v);
  return out;
}

export function percent(rate) {
  return rate === null || rate === undefined ? '—' : `${(rate * 100).toFixed(rate * 100 >= 10 || rate === 0 ? 1 : 2)}%`;
}

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

const dayLabel = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', timeZone: 'UTC' });
const shortDay = (day) => dayLabel.format(new Date(`${day}T00:00:00Z`));

/**
 * Draws the chart for `stats` into an SVG of `width` CSS pixels. Returns the SVG element; its
 * title and description say in words what it shows (the data table carries every figure).
 */
export function drawChart(stats, width, { titleId, descId }) {
  const rows = chartRows(stats);
  const height = width < 500 ? 190 : 230;
  const pad = { top: 12, right: 10, bottom: 26, left: 44 };
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const max = Math.max(0, ...rows.flatMap((r) => Object.values(r.values)));
  const yTicks = ticks(max);
  const top = yTicks[yTicks.length - 1];
  const x = (i) => pad.left + (rows.length === 1 ? plotW / 2 : (i * plotW) / (rows.length - 1));
  const y = (v) => pad.top + plotH - (v / top) * plotH;

  const grid = yTicks.map((v) =>
    svg(
      'g',
      { class: 'chart-tick' },
      svg('line', { x1: pad.left, x2: width - pad.right, y1: y(v), y2: y(v) }),
      svg('text', { x: pad.left - 6, y: y(v), dy: '0.32em', 'text-anchor': 'end' }, String(v)),
    ),
  );
  // About one label per 70 px, always the first and the last day.
  const every = Math.max(1, Math.ceil(rows.length / Math.max(2, Math.floor(plotW / 70))));
  const labels = rows.map((r, i) =>
    (i % every === 0 && (i === 0 || rows.length - 1 - i >= every / 2)) || i === rows.length - 1
      ? svg(
          'text',
          // The first and last labels stay inside the drawing.
          {
            class: 'chart-day',
            x: x(i),
            y: height - 8,
            'text-anchor': rows.length === 1 ? 'middle' : i === 0 ? 'start' : i === rows.length - 1 ? 'end' : 'middle',
          },
          shortDay(r.day),
        )
      : null,
  );
  const lines = SERIES.map(([key, label]) =>
    svg(
      'g',
      { class: `chart-series s-${key}`, 'data-series': key },
      svg('title', {}, label),
      svg('polyline', { points: rows.map((r, i) => `${x(i).toFixed(1)},${y(r.values[key]).toFixed(1)}`).join(' ') }),
      ...(rows.length <= 62 ? rows.map((r, i) => svg('circle', { cx: x(i).toFixed(1), cy: y(r.values[key]).toFixed(1), r: 2.2 })) : []),
    ),
  );
  const t = stats.totals.funnel;
  return svg(
    'svg',
    {
      class: 'chart-svg',
      width,
      height,
      viewBox: `0 0 ${width} ${height}`,
      role: 'img',
      'aria-labelledby': `${titleId} ${descId}`,
    },
    svg('title', { id: titleId }, `Emails per day, ${shortDay(stats.since)} to ${shortDay(stats.until)} (UTC)`),
    svg(
      'desc',
      { id: descId },
      SERIES.map(([key, label]) => `${label} ${t[key]}`).join(', ') + '. The table after the chart lists every day.',
    ),
    ...grid,
    ...labels,
    ...lines,
  );
}
