import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { type Browser, type Page } from 'playwright-core';
import { createEmailLogRepository, EMAIL_STATUSES } from '@mailroom/shared';
import { seededRandom } from '../../infra/dev/seeded-random';
import { ARTIFACTS, launchChromium } from '../support/browser';
import { startSmtpSink, type SmtpSink } from '../../infra/dev/smtp-sink';
import { startTestSystem, waitFor, type TestSystem } from '../support/system';
import { logEntry } from '../support/log-entry';

declare const document: any;
declare function getComputedStyle(node: unknown): any;

const SIM = 'simulator.mailroom.test';
const DAY_MS = 86_400_000;
const SERIES = ['sent', 'delivered', 'opened', 'clicked', 'bounced', 'complained', 'failed'];

/** A plain HTTP server standing for the internet: it counts every request by path. */
async function startCounter(): Promise<{ url: string; hits: Map<string, number>; close(): Promise<void> }> {
  const hits = new Map<string, number>();
  const server: Server = createServer((req, res) => {
    const p = (req.url ?? '/').split('?')[0]!;
    hits.set(p, (hits.get(p) ?? 0) + 1);
    if (p.endsWith('.png')) {
      // 1×1 transparent PNG
      res.writeHead(200, { 'content-type': 'image/png' });
      res.end(Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=', 'base64'));
      return;
    }
    res.writeHead(204).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    hits,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

describe('email log page: what was sent (Preview, Text, Headers) and the delivery chart, in Chromium', () => {
  let sink: SmtpSink;
  let sys: TestSystem;
  let browser: Browser;
  let counter: Awaited<ReturnType<typeof startCounter>>;
  const pageErrors: string[] = [];

  beforeAll(async () => {
    [sink, counter] = await Promise.all([startSmtpSink(), startCounter()]);
    sys = await startTestSystem({ env: { MANAGED_SMTP_URL: sink.url } });
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await sys?.close();
    await sink?.close();
    await counter?.close();
  });

  async function open(key: string, viewport = { width: 1280, height: 900 }): Promise<Page> {
    const ctx = await browser.newContext({ viewport, locale: 'en-US', timezoneId: 'UTC' });
    const page = await ctx.newPage();
    page.on('pageerror', (err) => pageErrors.push(err.message));
    await page.goto(`${sys.api.url}/`);
    await page.getByLabel('Admin API key', { exact: true }).fill(key);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForFunction(() => !document.getElementById('logs').hidden && !document.getElementById('logs').hasAttribute('aria-busy'));
    return page;
  }

  it('when the Preview of an email with scripts and remote images is opened, then nothing runs and images load only when asked', async () => {
    const ws = await sys.createWorkspace('Preview');
    const c = counter.url;
    const html = `<html><head><style>h1 { color: rgb(200, 0, 0); }</style></head><body>
      <h1>Invoice INV-77</h1>
      <script>fetch('${c}/script-ran'); document.title = 'pwned';</script>
      <img src="${c}/logo.png" alt="Logo" onerror="fetch('${c}/onerror-ran')" onload="fetch('${c}/onload-ran')">
      <svg onload="fetch('${c}/svg-onload-ran')"></svg>
      <form action="${c}/form-posted" method="post"><button id="go">Pay now</button></form>
      <a id="top" href="${c}/top-navigation" target="_top">Open</a>
    </body></html>`;
    const r = await sys.request('POST', '/v1/emails', {
      key: ws.keys.send,
      body: {
        to: `delivered@${SIM}`,
        type: 'invoice',
        subject: 'Invoice INV-77',
        html,
        text: 'Invoice INV-77\nTotal: 120.00 EUR',
        headers: { 'X-Campaign': 'autumn' },
        attachments: [
          { filename: 'INV-77.pdf', content: Buffer.from('%PDF-1.4 invoice').toString('base64'), contentType: 'application/pdf' },
        ],
        tracking: false,
      },
    });
    expect(r.status).toBe(202);
    await waitFor(async () => (await sys.request('GET', `/v1/email-logs/${r.body.id}`, { key: ws.keys.admin })).body.status === 'sent');

    const page = await open(ws.keys.admin);
    await page.locator(`#rows > tr[data-id="${r.body.id}"]`).click();
    const frameEl = page.locator('iframe.preview-frame');
    await frameEl.waitFor();
    await page.waitForFunction(() => /\/preview\?token=/.test(document.querySelector('iframe.preview-frame')?.getAttribute('src') ?? ''));
    expect(await frameEl.getAttribute('sandbox')).toBe('');
    const frame = page.frameLocator('iframe.preview-frame');
    await expect(frame.locator('h1').textContent()).resolves.toBe('Invoice INV-77');
    // Inline styles render (the preview's own policy allows them).
    expect(await frame.locator('h1').evaluate((n: any) => n.ownerDocument.defaultView.getComputedStyle(n).color)).toBe('rgb(200, 0, 0)');
    // The form cannot be sent and the link cannot take the page away.
    await frame.locator('#go').click();
    await frame.locator('#top').click();
    await page.waitForTimeout(500);
    expect(page.url()).toBe(`${sys.api.url}/`);
    expect(await page.title()).toBe('Email logs · Mailroom');
    expect(Object.fromEntries(counter.hits)).toEqual({});
    await page.screenshot({ path: path.join(ARTIFACTS, 'email-log-preview.png') });

    await page.getByRole('button', { name: 'Load images' }).click();
    await waitFor(async () => (counter.hits.get('/logo.png') ?? 0) >= 1, 10_000, 'the remote image to be fetched');
    await page.waitForTimeout(300);
    expect([...counter.hits.keys()]).toEqual(['/logo.png']);
    await page.screenshot({ path: path.join(ARTIFACTS, 'email-log-preview-images.png') });

    await page.getByRole('tab', { name: 'Text' }).click();
    await expect(page.locator('#panel-text pre').textContent()).resolves.toBe('Invoice INV-77\nTotal: 120.00 EUR');
    // Arrow keys move between the tabs.
    await page.keyboard.press('ArrowRight');
    expect(await page.getByRole('tab', { name: 'Headers' }).getAttribute('aria-selected')).toBe('true');
    const headers = await page
      .locator('#panel-headers table.headers tr')
      .evaluateAll((trs: any[]) => trs.map((tr) => [tr.querySelector('th').textContent, tr.querySelector('td').textContent]));
    expect(headers).toEqual([
      ['From', 'Mailroom <notifications@mailroom.test>'],
      ['To', `delivered@${SIM}`],
      ['Subject', 'Invoice INV-77'],
      ['X-Campaign', 'autumn'],
    ]);
    await expect(page.locator('#panel-headers .attachments li').textContent()).resolves.toBe('INV-77.pdf application/pdf · 16 B');
    await page.screenshot({ path: path.join(ARTIFACTS, 'email-log-headers.png') });
    expect(pageErrors).toEqual([]);
    await page.context().close();
  }, 60_000);

  it('when a workspace has 30 days of entries, then the chart draws the stats API figures, with rates and a hidden data table', async () => {
    const ws = await sys.createWorkspace('Chart');
    const r = seededRandom(20261202);
    const today = Date.parse(new Date().toISOString().slice(0, 10));
    const docs = [];
    // 40 days back: the last 30 are charted, the older ones must not be.
    for (let d = 0; d < 40; d++) {
      const n = d === 3 ? 0 : 1 + Math.floor(r() * 12);
      for (let i = 0; i < n; i++) {
        const status = EMAIL_STATUSES[Math.floor(r() * EMAIL_STATUSES.length)]!;
        docs.push(logEntry(ws.id, { sentAt: new Date(today - d * DAY_MS + 3_600_000 + i * 1000), status }));
      }
    }
    await createEmailLogRepository(sys.mongo.db(sys.config.logsMongo.db)).importEntries(docs);
    const since = new Date(today - 29 * DAY_MS).toISOString().slice(0, 10);
    const until = new Date(today).toISOString().slice(0, 10);
    const api = (await sys.request('GET', `/v1/email-logs/stats?since=${since}&until=${until}`, { key: ws.keys.admin })).body;

    for (const viewport of [
      { name: 'desktop', width: 1280, height: 900 },
      { name: 'phone', width: 390, height: 844 },
    ]) {
      const page = await open(ws.keys.admin, viewport);
      await page.locator('#chart:not([hidden]) svg.chart-svg').waitFor();
      const table = await page.locator('#chart-table tbody tr').evaluateAll((trs: any[]) =>
        trs.map((tr) => ({
          day: tr.getAttribute('data-day'),
          values: Object.fromEntries(
            [...tr.querySelectorAll('td')].map((td: any) => [td.getAttribute('data-series'), Number(td.textContent)]),
          ),
        })),
      );
      expect(table).toHaveLength(30);
      expect(table[0]!.day).toBe(since);
      expect(table[29]!.day).toBe(until);
      for (const row of table) {
        const bucket = api.days.find((d: { day: string }) => d.day === row.day);
        const want = Object.fromEntries(SERIES.map((s) => [s, bucket?.funnel[s] ?? 0]));
        expect({ day: row.day, ...row.values }).toEqual({ day: row.day, ...want });
      }
      // Every day of the range, even the empty one, is a point on each line.
      const points = await page
        .locator('svg.chart-svg polyline')
        .evaluateAll((ps: any[]) => ps.map((p) => p.getAttribute('points').split(' ').length));
      expect(points).toEqual(SERIES.map(() => 30));
      const legend = await page
        .locator('#chart-legend li')
        .evaluateAll((lis: any[]) =>
          Object.fromEntries(lis.map((li) => [li.getAttribute('data-series'), Number(li.querySelector('strong').textContent)])),
        );
      expect(legend).toEqual(api.totals.funnel);
      const rates = await page
        .locator('#chart-rates dd')
        .evaluateAll((dds: any[]) => Object.fromEntries(dds.map((dd) => [dd.getAttribute('data-rate'), dd.textContent])));
      for (const [key, value] of Object.entries(rates)) {
        const rate = api.totals.rates[key] as number;
        expect(value).toBe(`${(rate * 100).toFixed(rate * 100 >= 10 || rate === 0 ? 1 : 2)}%`);
      }
      // The table is there for screen readers only; the chart names itself.
      expect(await page.locator('#chart-table').evaluate((t: any) => getComputedStyle(t.parentElement).clipPath)).toBe('inset(50%)');
      expect(await page.locator('svg.chart-svg').getAttribute('role')).toBe('img');
      // Drawn at the width it is shown at, so its text keeps its size on a phone.
      const widths = await page
        .locator('#chart-plot')
        .evaluate((p: any) => [p.clientWidth, Number(p.querySelector('svg').getAttribute('width'))]);
      expect(Math.abs(widths[0] - widths[1])).toBeLessThanOrEqual(1);
      // Nothing overflows sideways.
      expect(await page.evaluate(() => document.documentElement.scrollWidth <= document.documentElement.clientWidth)).toBe(true);
      await page.locator('#chart').screenshot({ path: path.join(ARTIFACTS, `email-log-chart-${viewport.name}.png`) });
      await page.screenshot({ path: path.join(ARTIFACTS, `email-log-page-with-chart-${viewport.name}.png`), fullPage: false });

      if (viewport.name === 'desktop') {
        // The date filter's range is the chart's range.
        const week = { since: new Date(today - 6 * DAY_MS).toISOString().slice(0, 10), until };
        await page.locator('#f-since').fill(week.since);
        await page.locator('#f-until').fill(week.until);
        await page.getByRole('button', { name: 'Apply' }).click();
        await page.waitForFunction(() => document.querySelectorAll('#chart-table tbody tr').length === 7);
        const weekApi = (await sys.request('GET', `/v1/email-logs/stats?since=${week.since}&until=${week.until}`, { key: ws.keys.admin }))
          .body;
        const weekLegend = await page
          .locator('#chart-legend li')
          .evaluateAll((lis: any[]) =>
            Object.fromEntries(lis.map((li) => [li.getAttribute('data-series'), Number(li.querySelector('strong').textContent)])),
          );
        expect(weekLegend).toEqual(weekApi.totals.funnel);
      }
      await page.context().close();
    }
    expect(pageErrors).toEqual([]);
  }, 60_000);

  it('when a workspace has no entries, then there is no chart and the page says "No emails sent yet"', async () => {
    const ws = await sys.createWorkspace('Empty');
    const page = await open(ws.keys.admin);
    await expect(page.locator('#empty').textContent()).resolves.toBe('No emails sent yet');
    await page.waitForTimeout(300);
    expect(await page.locator('#chart').isHidden()).toBe(true);
    await page.context().close();
  });
});
