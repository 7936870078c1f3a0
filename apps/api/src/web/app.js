// The email log page. Plain DOM: all API text goes in as text nodes (through `h`), never as HTML.
// An email's own HTML is shown only inside a sandboxed frame whose document the API serves
// under a policy of its own (see the Preview tab).

import { chartRows, drawChart, percent, RATES, SERIES } from './chart.js';

const STATUS = {
  queued: ['Queued', '…'],
  sent: ['Sent', '→'],
  delivered: ['Delivered', '✓'],
  opened: ['Opened', '◉'],
  clicked: ['Clicked', '↗'],
  bounced: ['Bounced', '↩'],
  complained: ['Complained', '⚑'],
  send_failed: ['Send failed', '✕'],
  failed: ['Failed', '✕'],
};
const TYPES = {
  invoice: 'Invoice',
  proposal: 'Proposal',
  contract: 'Contract',
  task_notification: 'Task notification',
  scheduler_confirmation: 'Scheduler confirmation',
  digest: 'Digest',
  automation: 'Automation email',
  other: 'Other',
};
const METHODS = { managed: 'Mailroom', custom: 'Custom email', test: 'Test' };
const EVENTS = {
  queued: 'Queued',
  retrying: 'Attempt failed, retrying',
  sent: 'Handed to the sending provider',
  handoff_unknown: 'Handed to the sending provider, answer never received',
  delivered: 'Delivered',
  opened: 'Opened',
  clicked: 'Clicked a link',
  bounced: 'Bounced',
  complained: 'Marked as spam',
  send_failed: 'Send failed',
  failed: 'Failed after send',
};
const PAGE_SIZE = 50;
const KEY_STORE = 'mailroom.adminKey';
const POLL_MS = 2000;

/** Every element with an id, by its id in camelCase: `signin-form` → `el.signinForm`. */
const el = Object.fromEntries([...document.querySelectorAll('[id]')].map((n) => [n.id.replace(/-(\w)/g, (_, c) => c.toUpperCase()), n]));

const state = {
  key: null,
  items: [],
  nextCursor: null,
  seq: 0,
  pollTimer: 0,
  resendTarget: null,
  detailItem: null,
  chartSeq: 0,
  chartStats: null,
  detailSeq: 0,
};
const openers = new WeakMap();

/** Builds an element; strings become text nodes, `null`/`false` children are skipped. */
function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    node.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat()) if (child != null && child !== false) node.append(child);
  return node;
}

const hidden = (text) => h('span', { class: 'visually-hidden' }, text);
const none = (label) => h('span', { class: 'none' }, h('span', { 'aria-hidden': 'true' }, '—'), hidden(label));
const dayFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium' });
const clockFormat = new Intl.DateTimeFormat(undefined, { timeStyle: 'short' });
const precise = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });

/** In the user's locale, the ISO instant in the title; without `fmt`, the day then the time of day. */
function time(iso, label, fmt) {
  if (!iso) return none(label);
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return h('span', {}, String(iso));
  const text = fmt ? fmt.format(d) : [dayFormat.format(d), ' ', h('span', { class: 'clock' }, clockFormat.format(d))];
  return h('time', { datetime: d.toISOString(), title: d.toISOString() }, text);
}

function badge(status, label) {
  const [text, icon] = STATUS[status] ?? [label || status, '•'];
  return h('span', { class: `badge badge-${status}` }, h('span', { class: 'badge-icon', 'aria-hidden': 'true' }, icon), label || text);
}

const typeLabel = (type) => TYPES[type] ?? humanize(type);
const methodLabel = (item) => item.sendMethodLabel || METHODS[item.sendMethod] || humanize(item.sendMethod);
const humanize = (s) => (s ? String(s).charAt(0).toUpperCase() + String(s).slice(1).replace(/_/g, ' ') : '');

/** A visible notice for the outcome of an action, also read out. */
function notify(text) {
  el.notice.textContent = text;
  el.notice.hidden = false;
  announce(text);
}

function announce(text) {
  // Clearing first makes a repeated message be read again.
  el.announcer.textContent = '';
  setTimeout(() => (el.announcer.textContent = text), 50);
}

/* ---------- API ---------- */

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function api(path, opts = {}) {
  const headers = { authorization: `Bearer ${state.key}`, accept: 'application/json' };
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, {
      method: opts.method ?? 'GET',
      headers,
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
    });
  } catch {
    throw new ApiError(0, 'Mailroom could not be reached. Check your connection and try again.');
  }
  const body = res.status === 204 ? null : await res.json().catch(() => null);
  if (res.status === 401) {
    if (!el.logs.hidden) signOut('Your session has ended or the key was revoked. Sign in again with the admin API key.');
    throw new ApiError(401, 'That key was not accepted. Check that you copied the whole admin API key.');
  }
  if (!res.ok) {
    throw new ApiError(res.status, body?.error?.message ?? `The request failed (HTTP ${res.status}).`);
  }
  return body;
}

/* ---------- filters ---------- */

function fillSelect(select, labels) {
  for (const [value, label] of Object.entries(labels)) select.append(h('option', { value }, label));
}
fillSelect(el.fStatus, Object.fromEntries(Object.entries(STATUS).map(([k, [label]]) => [k, label])));
fillSelect(el.fType, TYPES);
fillSelect(el.fMethod, METHODS);

/** A local calendar day → the ISO instant it starts, or (`end`) its last millisecond. */
function localDay(value, end = false) {
  const [y, m, d] = value.split('-').map(Number);
  return new Date(new Date(y, m - 1, end ? d + 1 : d).getTime() - (end ? 1 : 0)).toISOString();
}

function listQuery(cursor) {
  const f = new FormData(el.filters);
  const q = new URLSearchParams({ limit: String(PAGE_SIZE) });
  for (const name of ['status', 'type', 'sendMethod']) if (f.get(name)) q.set(name, f.get(name));
  const recipient = String(f.get('recipient') ?? '').trim();
  if (recipient) q.set('recipient', recipient);
  const since = f.get('since');
  const until = f.get('until');
  if (since && until && since > until) throw new ApiError(400, '“Sent from” must be on or before “Sent until”.');
  // The user's days, not UTC ones; "Sent until" includes the whole day.
  if (since) q.set('since', localDay(since));
  if (until) q.set('until', localDay(until, true));
  if (cursor) q.set('cursor', cursor);
  return q;
}

const filtersActive = () => [...new FormData(el.filters).values()].some((v) => String(v).trim() !== '');

/* ---------- the list ---------- */

const COLUMNS = ['Recipient', 'Status', 'Type', 'From', 'Error', 'Send method', 'Opened at', 'Sent at'];

/** An address that may wrap after its `@` on narrow columns. */
function breakable(address) {
  const at = address.lastIndexOf('@');
  return at < 0 ? address : [address.slice(0, at + 1), h('wbr'), address.slice(at + 1)];
}

/** `Name <address>`: the name first, the address under it. */
function sender(from) {
  const m = /^(.*?)\s*<([^>]+)>$/.exec(from);
  if (!m || !m[1]) return h('span', { class: 'from' }, breakable(from));
  return h('span', { class: 'from' }, m[1], ' ', h('span', { class: 'addr' }, '<', breakable(m[2]), '>'));
}

function errorCell(item) {
  if (!item.errorCode && !item.error) return none('No error');
  return h(
    'div',
    { class: 'err', title: item.error || null },
    h('code', { class: 'err-code' }, item.errorCode || 'Error'),
    item.errorHint ? h('span', { class: 'err-hint' }, item.errorHint) : null,
  );
}

function statusCell(item) {
  const parts = [badge(item.status, item.statusLabel)];
  if (item.status === 'queued' && item.error) parts.push(h('span', { class: 'sub' }, `Retrying after attempt ${item.attempts}`));
  if (item.resendOf) parts.push(h('span', { class: 'sub' }, 'Resend'));
  return parts;
}

function row(item) {
  const who = `${item.recipient}, ${item.subject || 'no subject'}`;
  const cells = [
    h('span', { class: 'recipient' }, breakable(item.recipient)),
    statusCell(item),
    typeLabel(item.type),
    item.from ? sender(item.from) : none('Unknown'),
    errorCell(item),
    methodLabel(item),
    time(item.openedAt, 'Not opened'),
    // A queued entry's sentAt is when it was queued or last tried: it has not left yet.
    item.status === 'queued' ? none('Not sent yet') : time(item.sentAt, 'Not sent'),
  ];
  const tr = h('tr', { role: 'row', 'data-id': item.id, class: 'log-row' });
  cells.forEach((content, i) => {
    const attrs = { role: i === 0 ? 'rowheader' : 'cell', scope: i === 0 ? 'row' : null, 'data-label': COLUMNS[i] };
    // One wrapper per cell: on phones the cell is a two-column grid of label and value.
    tr.append(h(i === 0 ? 'th' : 'td', attrs, h('div', {}, content)));
  });
  tr.append(
    h(
      'td',
      { role: 'cell', class: 'actions' },
      h(
        'div',
        {},
        h('button', { type: 'button', class: 'btn btn-small', 'data-action': 'details' }, 'Details', hidden(` for ${who}`)),
        h('button', { type: 'button', class: 'btn btn-small', 'data-action': 'resend' }, 'Resend', hidden(` to ${who}`)),
      ),
    ),
  );
  return tr;
}

function render(rows = true) {
  if (rows) el.rows.replaceChildren(...state.items.map(row));
  const empty = state.items.length === 0;
  el.logTable.parentElement.hidden = empty;
  el.empty.hidden = !empty;
  el.empty.textContent = filtersActive() ? 'No emails match these filters' : 'No emails sent yet';
  el.loadMore.hidden = !state.nextCursor;
  const n = state.items.length;
  el.listSummary.textContent = empty ? '' : `Showing ${n} email${n === 1 ? '' : 's'}${state.nextCursor ? ', more available' : ''}`;
}

function showBanner(body) {
  const text = body.customEmailConnected ? body.banner : null;
  el.banner.hidden = !text;
  el.banner.textContent = text ?? '';
}

/** Loads the first page again (filters changed, refresh, resend). */
async function reload({ quiet = false } = {}) {
  const seq = ++state.seq;
  el.listError.textContent = '';
  if (!quiet) el.notice.hidden = true;
  el.logs.setAttribute('aria-busy', 'true');
  try {
    const body = await api(`/v1/email-logs?${listQuery()}`);
    if (seq !== state.seq) return null;
    loadChart().catch(() => undefined);
    state.items = body.items;
    state.nextCursor = body.nextCursor;
    showBanner(body);
    render();
    if (!quiet) announce(el.empty.hidden ? el.listSummary.textContent : el.empty.textContent);
    schedulePoll();
    return body;
  } catch (err) {
    if (seq === state.seq && err.status !== 401) el.listError.textContent = err.message;
    throw err;
  } finally {
    if (seq === state.seq) el.logs.removeAttribute('aria-busy');
  }
}

async function loadMore() {
  const seq = state.seq;
  el.loadMore.disabled = true;
  try {
    const body = await api(`/v1/email-logs?${listQuery(state.nextCursor)}`);
    if (seq !== state.seq) return;
    const known = new Set(state.items.map((i) => i.id));
    const fresh = body.items.filter((i) => !known.has(i.id));
    state.items.push(...fresh);
    state.nextCursor = body.nextCursor;
    el.rows.append(...fresh.map(row));
    render(false);
    announce(`Loaded ${fresh.length} more. ${el.listSummary.textContent}`);
    // The button disappears on the last page: keep focus in the list.
    if (!state.nextCursor && fresh.length) el.rows.querySelector(`tr[data-id="${CSS.escape(fresh[0].id)}"] button`)?.focus();
  } catch (err) {
    if (err.status !== 401) el.listError.textContent = err.message;
  } finally {
    el.loadMore.disabled = false;
  }
}

/** Queued entries change soon: refresh just those rows in place, less often as time passes. */
function schedulePoll(round = 0) {
  clearTimeout(state.pollTimer);
  const queued = state.items.filter((i) => i.status === 'queued').slice(0, 10);
  if (!queued.length || !state.key) return;
  const seq = state.seq;
  state.pollTimer = setTimeout(
    async () => {
      for (const item of queued) {
        if (seq !== state.seq) return;
        // A failure is retried next round; a 401 has signed out already.
        const fresh = await api(`/v1/email-logs/${encodeURIComponent(item.id)}`).catch(() => null);
        if (fresh && (fresh.status !== item.status || fresh.attempts !== item.attempts)) replaceItem(fresh);
      }
      schedulePoll(round + 1);
    },
    Math.min(POLL_MS * 1.5 ** round, 30_000),
  );
}

function replaceItem(fresh) {
  const i = state.items.findIndex((x) => x.id === fresh.id);
  if (i < 0) return;
  state.items[i] = fresh;
  const old = el.rows.querySelector(`tr[data-id="${CSS.escape(fresh.id)}"]`);
  if (!old) return;
  const focused = old.contains(document.activeElement) ? document.activeElement.dataset.action : null;
  const next = row(fresh);
  old.replaceWith(next);
  if (focused) next.querySelector(`[data-action="${focused}"]`)?.focus();
}

/* ---------- delivery chart ---------- */

const DAY_MS = 86_400_000;
const CHART_DAYS = 30;
const utcDay = (t) => new Date(t).toISOString().slice(0, 10);

/** The date filter's days, or the last 30 UTC days; a missing end is filled 30 days from the other. */
function chartRange() {
  const f = new FormData(el.filters);
  const since = String(f.get('since') ?? '');
  const until = String(f.get('until') ?? '');
  const end = until || (since ? utcDay(Math.min(Date.parse(since) + (CHART_DAYS - 1) * DAY_MS, Date.now())) : utcDay(Date.now()));
  const start = since || utcDay(Date.parse(end) - (CHART_DAYS - 1) * DAY_MS);
  return { since: start, until: end };
}

async function loadChart() {
  const seq = ++state.chartSeq;
  const { since, until } = chartRange();
  if (since > until) return;
  el.chartError.textContent = '';
  let stats;
  try {
    stats = await api(`/v1/email-logs/stats?${new URLSearchParams({ since, until })}`);
  } catch (err) {
    if (seq === state.chartSeq && err.status !== 401) {
      el.chart.hidden = false;
      el.chartError.textContent = `The chart could not be loaded: ${err.message}`;
    }
    return;
  }
  if (seq !== state.chartSeq) return;
  state.chartStats = stats;
  drawChartSection();
}

function drawChartSection() {
  const stats = state.chartStats;
  // Empty range: no chart; the list says "No emails sent yet" (or that nothing matches).
  el.chart.hidden = !stats || stats.totals.total === 0;
  if (el.chart.hidden) return;
  const fmt = (day) => dayFormat.format(new Date(`${day}T00:00:00Z`));
  el.chartRange.textContent = `${fmt(stats.since)} – ${fmt(stats.until)}, by UTC day the email was sent`;
  el.chartRates.replaceChildren(
    ...RATES.flatMap(([key, label]) => [h('dt', {}, label), h('dd', { 'data-rate': key }, percent(stats.totals.rates[key]))]),
  );
  drawnWidth = Math.floor(el.chartPlot.clientWidth);
  const width = Math.max(280, drawnWidth || 600);
  el.chartPlot.replaceChildren(drawChart(stats, width, { titleId: 'chart-svg-title', descId: 'chart-svg-desc' }));
  el.chartLegend.replaceChildren(
    ...SERIES.map(([key, label]) =>
      h(
        'li',
        { 'data-series': key },
        h('span', { class: `swatch s-${key}`, 'aria-hidden': 'true' }),
        `${label} `,
        h('strong', {}, String(stats.totals.funnel[key])),
      ),
    ),
  );
  const rows = chartRows(stats);
  el.chartTable.replaceChildren(
    h('caption', {}, `Emails per UTC day, ${fmt(stats.since)} to ${fmt(stats.until)}`),
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        h('th', { scope: 'col' }, 'Day'),
        SERIES.map(([, label]) => h('th', { scope: 'col' }, label)),
      ),
    ),
    h(
      'tbody',
      {},
      rows.map((r) =>
        h(
          'tr',
          { 'data-day': r.day },
          h('th', { scope: 'row' }, fmt(r.day)),
          SERIES.map(([key]) => h('td', { 'data-series': key }, String(r.values[key]))),
        ),
      ),
    ),
  );
}

// Drawn at the width it is shown at: again when that changes (a resize, or the list shown after
// sign-in, before which the section had no width at all).
let drawnWidth = 0;
new ResizeObserver(() => {
  const width = Math.floor(el.chartPlot.clientWidth);
  if (!state.chartStats || el.chart.hidden || width === 0 || width === drawnWidth) return;
  drawChartSection();
}).observe(el.chartPlot);

/* ---------- detail panel ---------- */

function field(label, value) {
  return [h('dt', {}, label), h('dd', {}, value)];
}

function entryLink(id, text) {
  return h('a', { href: `#email=${encodeURIComponent(id)}`, 'data-entry': id }, text);
}

function timeline(events) {
  if (!events?.length) return h('p', { class: 'muted' }, 'No events recorded yet.');
  return h(
    'ol',
    { class: 'timeline' },
    events.map((e) => {
      const notes = [];
      if (e.provider) notes.push(`via ${e.provider}`);
      if (e.machine) notes.push('likely an automatic open by a mail privacy feature');
      if (e.late) notes.push('arrived late');
      if (e.changedStatus === false) notes.push('status unchanged');
      if (e.resolvedHandOff) notes.push('settled the unknown hand-off: the email left');
      return h(
        'li',
        { class: `event event-${e.type}` },
        h('span', { class: 'event-name' }, EVENTS[e.type] ?? humanize(e.type)),
        ' ',
        time(e.at, 'Unknown time', precise),
        notes.length ? h('span', { class: 'sub' }, notes.join(' · ')) : null,
        e.detail ? h('span', { class: 'event-detail' }, e.detail) : null,
        e.url ? h('code', { class: 'event-url' }, e.url) : null,
        e.receivedAt && e.receivedAt !== e.at ? h('span', { class: 'sub' }, 'Received ', time(e.receivedAt, '', precise)) : null,
      );
    }),
  );
}

function detailView(item) {
  const ref = item.reference ? `${humanize(item.reference.kind)} ${item.reference.id}` : null;
  const resends = item.links?.resends ?? item.resends ?? [];
  const original = item.links?.original ?? item.resendOf;
  return [
    h(
      'dl',
      { class: 'fields' },
      field('Subject', item.subject || none('No subject')),
      field('Recipient', item.recipient),
      field('Status', badge(item.status, item.statusLabel)),
      field('Type', typeLabel(item.type)),
      field('From', item.from || none('Unknown')),
      field('Send method', methodLabel(item)),
      field(item.status === 'queued' ? 'Queued at' : 'Sent at', time(item.sentAt, 'Not sent', precise)),
      item.nextRetryAt ? field('Next retry', time(item.nextRetryAt, '', precise)) : null,
      field('Opened at', time(item.openedAt, 'Not opened', precise)),
      field('Opens / clicks', `${item.opens ?? 0} / ${item.clicks ?? 0}`),
      field('Attempts', String(item.attempts ?? 0)),
      ref ? field('Reference', ref) : null,
      field('Created at', time(item.createdAt, 'Unknown', precise)),
      field('Log ID', h('code', {}, item.id)),
      item.messageId ? field('Message-ID', h('code', {}, item.messageId)) : null,
      item.providerMessageId ? field('Provider message ID', h('code', {}, item.providerMessageId)) : null,
      item.metadata && Object.keys(item.metadata).length
        ? field(
            'Metadata',
            Object.entries(item.metadata).map(([k, v]) => h('span', { class: 'sub' }, `${k}: ${v}`)),
          )
        : null,
    ),
    item.errorCode || item.error
      ? h(
          'section',
          { class: 'detail-error', 'aria-labelledby': 'detail-error-title' },
          h('h3', { id: 'detail-error-title' }, 'Error'),
          h('p', {}, h('code', { class: 'err-code' }, item.errorCode || 'Error'), ' ', item.errorHint || ''),
          item.error ? h('pre', { class: 'raw' }, item.error) : null,
        )
      : null,
    h(
      'section',
      { class: 'content', 'aria-labelledby': 'detail-content-title' },
      h('h3', { id: 'detail-content-title' }, 'Content'),
      h('div', { id: 'content-body' }, h('p', { class: 'muted' }, 'Loading the content…')),
    ),
    h(
      'section',
      { 'aria-labelledby': 'detail-resends-title' },
      h('h3', { id: 'detail-resends-title' }, 'Resends'),
      original ? h('p', {}, 'This is a resend of ', entryLink(original, 'the original email'), '.') : null,
      resends.length
        ? h(
            'ul',
            { class: 'links' },
            resends.map((id, n) => h('li', {}, entryLink(id, `Resend ${n + 1}`), ' ', h('code', {}, id))),
          )
        : h('p', { class: 'muted' }, original ? 'This copy has not been resent.' : 'Not resent.'),
      h('button', { type: 'button', class: 'btn', 'data-action': 'resend' }, 'Resend'),
    ),
    h(
      'section',
      { 'aria-labelledby': 'detail-timeline-title' },
      h('h3', { id: 'detail-timeline-title' }, 'Timeline'),
      timeline(item.timeline),
    ),
  ];
}

/* ---------- what was sent: Preview, Text, Headers ---------- */

const CONTENT_TABS = [
  ['preview', 'Preview'],
  ['text', 'Text'],
  ['headers', 'Headers'],
];

function formatSize(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

function headersView(c) {
  const rows = [
    ['From', c.from],
    ['To', c.to],
    ['Cc', c.cc.join(', ')],
    ['Bcc', c.bcc.join(', ')],
    ['Reply-To', c.replyTo],
    ['Subject', c.subject],
    ...c.headers.map((x) => [x.name, x.value]),
  ].filter(([, v]) => v);
  return [
    h(
      'table',
      { class: 'headers' },
      h('caption', { class: 'visually-hidden' }, 'Headers as submitted'),
      h(
        'tbody',
        {},
        rows.map(([name, value]) => h('tr', {}, h('th', { scope: 'row' }, name), h('td', {}, value))),
      ),
    ),
    h('h4', {}, 'Attachments'),
    c.attachments.length
      ? h(
          'ul',
          { class: 'attachments' },
          c.attachments.map((a) =>
            h(
              'li',
              {},
              h('span', { class: 'att-name' }, a.filename),
              ' ',
              h('span', { class: 'sub' }, `${a.contentType ?? 'unknown type'} · ${formatSize(a.size)}`),
            ),
          ),
        )
      : h('p', { class: 'muted' }, 'No attachments.'),
  ];
}

/** The preview frame: no scripts, forms, popups or navigation of the page (empty sandbox); remote images on request. */
function previewView(item, c) {
  if (c.html === null && c.text === null) return h('p', { class: 'muted' }, 'This email has no body.');
  const frame = h('iframe', {
    class: 'preview-frame',
    sandbox: '',
    referrerpolicy: 'no-referrer',
    title: `Preview of the email to ${item.recipient}`,
  });
  const status = h('span', { class: 'sub', role: 'status' }, 'Remote images are not loaded, so the sender is not told you looked.');
  const load = h('button', { type: 'button', class: 'btn', 'data-action': 'load-images' }, 'Load images');
  let url = null;
  const seq = state.detailSeq;
  api(`/v1/email-logs/${encodeURIComponent(item.id)}/preview-link`, { method: 'POST' }).then(
    (link) => {
      if (seq !== state.detailSeq) return;
      url = link.url;
      frame.src = url;
    },
    (err) => {
      if (seq === state.detailSeq) status.textContent = `The preview could not be opened: ${err.message}`;
    },
  );
  load.addEventListener('click', () => {
    if (!url) return;
    frame.src = `${url}&images=1`;
    load.disabled = true;
    status.textContent = 'Remote images loaded.';
  });
  return h('div', { class: 'preview' }, c.html !== null ? h('div', { class: 'preview-bar' }, load, status) : null, frame);
}

function contentTabs(item, c) {
  const panels = {
    preview: () => previewView(item, c),
    text: () =>
      c.text !== null ? h('pre', { class: 'raw text-part' }, c.text) : h('p', { class: 'muted' }, 'This email has no text part.'),
    headers: () => headersView(c),
  };
  const tabs = CONTENT_TABS.map(([key, label], i) =>
    h(
      'button',
      {
        type: 'button',
        role: 'tab',
        id: `tab-${key}`,
        'aria-controls': `panel-${key}`,
        'aria-selected': i === 0 ? 'true' : 'false',
        tabindex: i === 0 ? '0' : '-1',
        'data-tab': key,
      },
      label,
    ),
  );
  const built = new Map();
  const bodies = CONTENT_TABS.map(([key], i) =>
    h('div', { role: 'tabpanel', id: `panel-${key}`, 'aria-labelledby': `tab-${key}`, tabindex: '0', hidden: i !== 0 }),
  );
  const select = (key, focus = false) => {
    tabs.forEach((t, i) => {
      const on = t.dataset.tab === key;
      t.setAttribute('aria-selected', on ? 'true' : 'false');
      t.tabIndex = on ? 0 : -1;
      bodies[i].hidden = !on;
      if (on && !built.has(key)) {
        built.set(key, true);
        bodies[i].replaceChildren(...[panels[key]()].flat());
      }
      if (on && focus) t.focus();
    });
  };
  const list = h('div', { role: 'tablist', 'aria-label': 'Content views', class: 'tabs' }, tabs);
  list.addEventListener('click', (e) => {
    const tab = e.target.closest('[role="tab"]');
    if (tab) select(tab.dataset.tab);
  });
  list.addEventListener('keydown', (e) => {
    const i = tabs.indexOf(document.activeElement);
    if (i < 0 || !['ArrowLeft', 'ArrowRight', 'Home', 'End'].includes(e.key)) return;
    e.preventDefault();
    const next =
      e.key === 'Home' ? 0 : e.key === 'End' ? tabs.length - 1 : (i + (e.key === 'ArrowRight' ? 1 : tabs.length - 1)) % tabs.length;
    select(tabs[next].dataset.tab, true);
  });
  select('preview');
  return [list, ...bodies];
}

async function loadContent(item) {
  const seq = state.detailSeq;
  const target = () => el.detailBody.querySelector('#content-body');
  try {
    const c = await api(`/v1/email-logs/${encodeURIComponent(item.id)}/content`);
    if (seq !== state.detailSeq || !target()) return;
    target().replaceChildren(...contentTabs(item, c));
  } catch (err) {
    if (seq !== state.detailSeq || !target()) return;
    const text = err.status === 404 ? 'The content of this email is no longer kept.' : `The content could not be loaded: ${err.message}`;
    target().replaceChildren(h('p', { class: 'muted' }, text));
  }
}

async function openDetail(id) {
  const seq = ++state.detailSeq;
  el.detailTitle.textContent = 'Email details';
  el.detailBody.replaceChildren(h('p', { class: 'muted' }, 'Loading…'));
  if (!el.detail.open) openModal(el.detail);
  el.detail.setAttribute('aria-busy', 'true');
  try {
    const item = await api(`/v1/email-logs/${encodeURIComponent(id)}`);
    if (seq !== state.detailSeq) return;
    el.detailTitle.textContent = `Email to ${item.recipient}`;
    el.detailBody.replaceChildren(...detailView(item).filter(Boolean));
    state.detailItem = item;
    loadContent(item);
  } catch (err) {
    if (err.status === 401) return el.detail.close();
    el.detailBody.replaceChildren(h('p', { class: 'form-error', role: 'alert' }, err.message));
  } finally {
    el.detail.removeAttribute('aria-busy');
  }
}

/* ---------- resend ---------- */

function askResend(item) {
  state.resendTarget = item;
  el.confirmError.textContent = '';
  el.confirmText.textContent = `Mailroom sends a fresh copy of “${item.subject || 'this email'}” to ${item.recipient} through your current sending settings and records it as a new entry in the log.`;
  el.confirmOk.disabled = false;
  openModal(el.confirm);
  // Cancel first: confirming is the deliberate step.
  el.confirm.querySelector('[data-close]').focus();
}

async function confirmResend() {
  const item = state.resendTarget;
  if (!item) return;
  el.confirmOk.disabled = true;
  el.confirmError.textContent = '';
  try {
    const res = await api(`/v1/email-logs/${encodeURIComponent(item.id)}/resend`, { method: 'POST', body: {} });
    el.confirm.close();
    if (el.detail.open) el.detail.close();
    await reload({ quiet: true });
    const tr = el.rows.querySelector(`tr[data-id="${CSS.escape(res.id)}"]`);
    tr?.classList.add('is-new');
    tr?.querySelector('[data-action="details"]')?.focus();
    notify(
      tr
        ? `Resent to ${item.recipient}. The new entry is at the top of the list.`
        : `Resent to ${item.recipient}. The new entry does not match the current filters.`,
    );
  } catch (err) {
    if (err.status === 401) return el.confirm.close();
    const why = err.status === 404 ? 'This email is past the retention window and can no longer be resent.' : err.message;
    el.confirmError.textContent = why;
    el.confirmOk.disabled = false;
  }
}

/* ---------- sign-in ---------- */

function show(signedIn) {
  el.signin.hidden = signedIn;
  el.logs.hidden = !signedIn;
  el.signOut.hidden = !signedIn;
}

function signOut(message, { keepInput = false } = {}) {
  clearTimeout(state.pollTimer);
  state.key = null;
  state.items = [];
  state.nextCursor = null;
  state.seq++;
  sessionStorage.removeItem(KEY_STORE);
  for (const d of [el.confirm, el.detail]) if (d.open) d.close();
  el.rows.replaceChildren();
  el.notice.hidden = true;
  el.signinError.textContent = message ?? '';
  if (!keepInput) el.adminKey.value = '';
  show(false);
  el.adminKey.focus();
  el.adminKey.select();
}

async function signIn(key, { saved = false } = {}) {
  state.key = key;
  el.signinError.textContent = '';
  try {
    await reload({ quiet: true });
  } catch (err) {
    const message =
      err.status === 403
        ? 'This key cannot read the email log. Sign in with the admin API key, not the send key.'
        : err.status === 401
          ? saved
            ? 'Your session has ended. Sign in again with the admin API key.'
            : err.message
          : `Could not load the email log: ${err.message}`;
    // A mistyped key stays in the field, selected, to be fixed or replaced.
    signOut(message, { keepInput: !saved });
    return;
  }
  sessionStorage.setItem(KEY_STORE, key);
  show(true);
  el.logsTitle.setAttribute('tabindex', '-1');
  el.logsTitle.focus();
  announce(`Signed in. ${el.empty.hidden ? el.listSummary.textContent : el.empty.textContent}`);
  const m = /^#email=(.+)$/.exec(location.hash);
  if (m) openDetail(decodeURIComponent(m[1]));
}

/* ---------- wiring ---------- */

el.signinForm.addEventListener('submit', (e) => {
  e.preventDefault();
  const key = el.adminKey.value.trim();
  if (!key) {
    el.signinError.textContent = 'Enter your admin API key.';
    el.adminKey.focus();
    return;
  }
  signIn(key);
});
el.signOut.addEventListener('click', () => {
  signOut(null);
  announce('Signed out.');
});
el.refresh.addEventListener('click', () => reload().catch(() => undefined));
el.loadMore.addEventListener('click', loadMore);

let typing = 0;
el.filters.addEventListener('submit', (e) => {
  e.preventDefault();
  clearTimeout(typing);
  reload().catch(() => undefined);
});
el.filters.addEventListener('change', (e) => {
  if (e.target.name === 'recipient') return;
  reload().catch(() => undefined);
});
el.filters.addEventListener('input', (e) => {
  if (e.target.name !== 'recipient') return;
  clearTimeout(typing);
  typing = setTimeout(() => reload().catch(() => undefined), 400);
});
// `reset` fires before the fields are cleared.
el.filters.addEventListener('reset', () => setTimeout(() => reload().catch(() => undefined)));

el.rows.addEventListener('click', (e) => {
  const tr = e.target.closest('tr[data-id]');
  if (!tr) return;
  const item = state.items.find((i) => i.id === tr.dataset.id);
  const action = e.target.closest('[data-action]')?.dataset.action;
  if (action === 'resend') return askResend(item);
  // A click anywhere else on the row opens the details, unless the user is selecting text.
  if (action === 'details' || !getSelection()?.toString()) openDetail(item.id);
});

el.detailBody.addEventListener('click', (e) => {
  const link = e.target.closest('a[data-entry]');
  if (link) {
    e.preventDefault();
    openDetail(link.dataset.entry);
    return;
  }
  if (e.target.closest('[data-action="resend"]') && state.detailItem) askResend(state.detailItem);
});

el.confirmOk.addEventListener('click', confirmResend);

/** A native modal dialog: the page behind is inert, Escape closes it, focus goes back after. */
function openModal(dialog) {
  openers.set(dialog, document.activeElement);
  dialog.showModal();
}

const FOCUSABLE = 'a[href], button:not([disabled]), input:not([disabled]), select:not([disabled]), [tabindex]:not([tabindex="-1"])';

for (const dialog of [el.detail, el.confirm]) {
  dialog.addEventListener('close', () => {
    const opener = openers.get(dialog);
    openers.delete(dialog);
    if (opener?.isConnected && !dialog.contains(opener)) opener.focus();
    if (dialog === el.detail && location.hash) history.replaceState(null, '', location.pathname);
  });
  // Tab wraps inside the dialog instead of leaving for the browser's own controls.
  dialog.addEventListener('keydown', (e) => {
    if (e.key !== 'Tab') return;
    const items = [...dialog.querySelectorAll(FOCUSABLE)].filter((n) => n.getClientRects().length);
    if (!items.length) return;
    const first = items[0];
    const last = items[items.length - 1];
    if (e.shiftKey && document.activeElement === first) {
      e.preventDefault();
      last.focus();
    } else if (!e.shiftKey && document.activeElement === last) {
      e.preventDefault();
      first.focus();
    }
  });
  dialog.addEventListener('click', (e) => {
    if (e.target.closest('[data-close]')) dialog.close();
    // A click on the backdrop lands on the dialog element itself.
    else if (e.target === dialog) {
      const r = dialog.getBoundingClientRect();
      const inside = e.clientX >= r.left && e.clientX <= r.right && e.clientY >= r.top && e.clientY <= r.bottom;
      if (!inside) dialog.close();
    }
  });
}

const saved = sessionStorage.getItem(KEY_STORE);
if (saved) signIn(saved, { saved: true });
else show(false);
