import path from 'node:path';
import { type Browser, type BrowserContext, type Locator, type Page } from 'playwright-core';
import { ARTIFACTS, launchChromium } from '../support/browser';
import { startSmtpSink, type SmtpSink } from '../../infra/dev/smtp-sink';
import { startTestSystem, waitFor, type TestSystem } from '../support/system';

// Browser globals inside `page.evaluate` callbacks: the project compiles without the DOM lib.
declare const document: any;
declare const window: any;
declare const sessionStorage: any;
declare function getComputedStyle(node: unknown, pseudo?: string): any;

const SIM = 'simulator.mailroom.test';
const COLUMNS = ['Recipient', 'Status', 'Type', 'From', 'Error', 'Send method', 'Opened at', 'Sent at'];

/** The page in a real headless Chromium (Debian's), against a real API, worker, Redis, database and SMTP sink. */
describe('email log page (Settings > Management > Email logs) in Chromium', () => {
  let sink: SmtpSink;
  let customSink: SmtpSink;
  let sys: TestSystem;
  let ws: { id: string; keys: { send: string; admin: string } };
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  /** Script errors and CSP violations seen by any page: the last test expects none. */
  const problems: string[] = [];

  beforeAll(async () => {
    [sink, customSink] = await Promise.all([startSmtpSink({ slowMs: 200 }), startSmtpSink({ slowMs: 200 })]);
    sys = await startTestSystem({ env: { MANAGED_SMTP_URL: sink.url } });
    ws = await sys.createWorkspace('Acme');
    browser = await launchChromium();
    context = await newContext({ width: 1280, height: 860 });
    page = await context.newPage();
  });
  afterAll(async () => {
    await browser?.close();
    await sys?.close();
    await Promise.all([sink?.close(), customSink?.close()]);
  });

  async function newContext(viewport: { width: number; height: number }): Promise<BrowserContext> {
    const ctx = await browser.newContext({ viewport, locale: 'en-US', timezoneId: 'UTC' });
    ctx.on('page', (p) => watch(p));
    return ctx;
  }

  function watch(p: Page): void {
    p.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
    p.on('console', (msg) => {
      if (msg.type() === 'error' && !/Failed to load resource: the server responded with a status of (401|403|404|409)/.test(msg.text())) {
        problems.push(`console: ${msg.text()}`);
      }
    });
  }

  const send = (body: Record<string, unknown>) =>
    sys.request('POST', '/v1/emails', {
      key: ws.keys.send,
      body: { type: 'invoice', subject: 'Invoice INV-1', html: '<p>Hi</p>', ...body },
    });

  /** Waits until the API reports the entry in one of `statuses` (the worker has sent it). */
  const settled = (id: string, statuses = ['sent', 'send_failed']) =>
    waitFor(
      async () => {
        const r = await sys.request('GET', `/v1/email-logs/${id}`, { key: ws.keys.admin });
        return r.status === 200 && statuses.includes(r.body.status) ? r.body : null;
      },
      20_000,
      `entry ${id} in ${statuses.join('/')}`,
    );

  async function sendAndSettle(body: Record<string, unknown>, statuses?: string[]): Promise<string> {
    const r = await send(body);
    expect(r.status).toBe(202);
    await settled(r.body.id, statuses);
    return r.body.id as string;
  }

  async function signIn(p: Page, key: string): Promise<void> {
    await p.goto(`${sys.api.url}/`);
    await p.getByLabel('Admin API key', { exact: true }).fill(key);
    await p.getByRole('button', { name: 'Sign in' }).click();
  }

  const rows = (p: Page = page) => p.locator('#rows > tr');
  const rowFor = (id: string, p: Page = page) => p.locator(`#rows > tr[data-id="${id}"]`);
  const cell = (row: Locator, column: string) => row.locator(`[data-label="${column}"]`);
  const rowIds = (p: Page = page) => rows(p).evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-id')));

  async function refresh(): Promise<void> {
    await page.getByRole('button', { name: 'Refresh' }).click();
    await page.waitForFunction(() => !document.getElementById('logs')!.hasAttribute('aria-busy'));
  }

  /** Changes a filter and waits for the list to answer it. */
  async function filter(change: () => Promise<unknown>): Promise<void> {
    const answered = page.waitForResponse((r) => r.url().includes('/v1/email-logs?') && r.request().method() === 'GET');
    await change();
    await answered;
    await page.waitForFunction(() => !document.getElementById('logs')!.hasAttribute('aria-busy'));
  }

  it('when GET / is asked for, then the page comes with a strict CSP, no inline script and cacheable assets', async () => {
    const res = await fetch(`${sys.api.url}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(res.headers.get('cache-control')).toBe('no-cache');
    const csp = res.headers.get('content-security-policy')!;
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("default-src 'none'");
    expect(csp).not.toContain('unsafe-inline');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    const html = await res.text();
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(html).not.toMatch(/\son[a-z]+=/i);

    const js = /src="(\/assets\/app\.[0-9A-Za-z_-]+\.js)"/.exec(html)![1]!;
    const css = /href="(\/assets\/styles\.[0-9A-Za-z_-]+\.css)"/.exec(html)![1]!;
    const jsRes = await fetch(sys.api.url + js);
    expect(jsRes.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(jsRes.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    const cssRes = await fetch(sys.api.url + css);
    expect(cssRes.headers.get('content-type')).toBe('text/css; charset=utf-8');
    const again = await fetch(sys.api.url + css, { headers: { 'if-none-match': cssRes.headers.get('etag')! } });
    expect(again.status).toBe(304);
    expect((await fetch(`${sys.api.url}/assets/nope.js`)).status).toBe(404);

    // app.js imports the chart module by its hashed name, cached as long as app.js is.
    const jsText = await jsRes.text();
    const chart = /'\.\/(chart\.[0-9A-Za-z_-]+\.js)'/.exec(jsText)![1]!;
    const chartRes = await fetch(`${sys.api.url}/assets/${chart}`);
    expect(chartRes.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    // No framework: page, script, chart and styles stay small (uncompressed bytes).
    const size =
      Buffer.byteLength(jsText) +
      (await chartRes.arrayBuffer()).byteLength +
      (await cssRes.arrayBuffer()).byteLength +
      Buffer.byteLength(html);
    expect(size).toBeLessThan(64 * 1024);
  });

  it('when a wrong key is entered, then the sign-in form says so and the log stays hidden', async () => {
    await signIn(page, 'mr_admin_not-a-real-key');
    await page.getByRole('alert').filter({ hasText: 'not accepted' }).waitFor();
    expect(await page.locator('#logs').isHidden()).toBe(true);

    await signIn(page, ws.keys.send);
    await page.getByText('Sign in with the admin API key, not the send key').waitFor();
  });

  it('when a fresh workspace signs in with the admin key, then the page shows "No emails sent yet"', async () => {
    await signIn(page, ws.keys.admin);
    await page.getByRole('heading', { level: 1, name: 'Email logs' }).waitFor();
    await expect(page.locator('#empty').textContent()).resolves.toBe('No emails sent yet');
    expect(await page.locator('#empty').isVisible()).toBe(true);
    expect(await page.locator('#load-more').isHidden()).toBe(true);
    expect(await page.locator('#banner').isHidden()).toBe(true);
  });

  it('when an email is sent through the API, then it appears on top with exactly the seed columns', async () => {
    const id = await sendAndSettle({ to: `delivered@${SIM}`, type: 'task_notification', subject: 'Task due tomorrow' });
    await refresh();
    const headers = await page.locator('#log-table thead th').allTextContents();
    expect(headers.slice(0, 8)).toEqual(COLUMNS);
    expect(headers[8]).toBe('Actions'); // the visually hidden name of the buttons column

    const row = rowFor(id);
    await expect(rowIds()).resolves.toEqual([id]);
    await expect(cell(row, 'Recipient').textContent()).resolves.toBe(`delivered@${SIM}`);
    await expect(cell(row, 'Status').innerText()).resolves.toContain('Sent');
    await expect(cell(row, 'Type').textContent()).resolves.toBe('Task notification');
    await expect(cell(row, 'From').textContent()).resolves.toBe('Mailroom <notifications@mailroom.test>');
    // An empty cell: a dash for the eye, words for screen readers.
    await expect(cell(row, 'Error').textContent()).resolves.toBe('—No error');
    await expect(cell(row, 'Send method').textContent()).resolves.toBe('Mailroom');
    await expect(cell(row, 'Opened at').textContent()).resolves.toBe('—Not opened');
    // Locale date, the ISO instant in the title.
    const sentAt = cell(row, 'Sent at').locator('time');
    const iso = (await sentAt.getAttribute('datetime'))!;
    expect(await sentAt.getAttribute('title')).toBe(iso);
    const day = new Intl.DateTimeFormat('en-US', { dateStyle: 'medium', timeZone: 'UTC' }).format(new Date(iso));
    const clock = new Intl.DateTimeFormat('en-US', { timeStyle: 'short', timeZone: 'UTC' }).format(new Date(iso));
    expect(await sentAt.textContent()).toBe(`${day} ${clock}`);
    await expect(page.locator('#list-summary').textContent()).resolves.toBe('Showing 1 email');
  });

  it('when a send bounces, then the Error cell shows the code and its hint, with the raw reply in a title', async () => {
    const id = await sendAndSettle({ to: `bounce@${SIM}`, subject: 'Invoice INV-2' });
    await refresh();
    const row = rowFor(id);
    await expect(rowIds().then((ids) => ids[0])).resolves.toBe(id);
    await expect(cell(row, 'Status').innerText()).resolves.toContain('Send failed');
    const api = (await sys.request('GET', `/v1/email-logs/${id}`, { key: ws.keys.admin })).body;
    expect(api.errorCode).toBe('SMTP_550');
    const err = cell(row, 'Error');
    await expect(err.locator('.err-code').textContent()).resolves.toBe('SMTP_550');
    await expect(err.locator('.err-hint').textContent()).resolves.toBe(api.errorHint);
    expect(api.errorHint).toBeTruthy();
    await expect(err.locator('.err').getAttribute('title')).resolves.toBe(api.error);
    expect(api.error).toContain('550');
  });

  it('when filters are set, then only the matching rows remain, and clearing them brings all back', async () => {
    const test = await sys.request('POST', '/v1/settings/email/test', { key: ws.keys.admin, body: { to: `tester@${SIM}` } });
    expect(test.body).toMatchObject({ ok: true });
    await refresh();
    await expect(rows().count()).resolves.toBe(3);
    const recipients = () => rows().locator('[data-label="Recipient"]').allTextContents();

    await filter(() => page.getByLabel('Status', { exact: true }).selectOption({ label: 'Send failed' }));
    await expect(recipients()).resolves.toEqual([`bounce@${SIM}`]);
    await filter(() => page.getByLabel('Status', { exact: true }).selectOption({ label: 'Problems only' }));
    await expect(recipients()).resolves.toEqual([`bounce@${SIM}`]);
    await filter(() => page.getByLabel('Status', { exact: true }).selectOption({ label: 'Sent' }));
    await expect(recipients()).resolves.toEqual([`tester@${SIM}`, `delivered@${SIM}`]);

    await filter(() => page.getByLabel('Type', { exact: true }).selectOption({ label: 'Task notification' }));
    await expect(recipients()).resolves.toEqual([`delivered@${SIM}`]);
    await filter(() => page.getByLabel('Status', { exact: true }).selectOption({ label: 'All statuses' }));
    await filter(() => page.getByLabel('Type', { exact: true }).selectOption({ label: 'All types' }));

    await filter(() => page.getByLabel('Send method', { exact: true }).selectOption({ label: 'Test' }));
    await expect(recipients()).resolves.toEqual([`tester@${SIM}`]);
    await expect(cell(rows().first(), 'Send method').textContent()).resolves.toBe('Test');
    await filter(() => page.getByLabel('Send method', { exact: true }).selectOption({ label: 'All send methods' }));

    await filter(async () => {
      await page.getByLabel('Recipient', { exact: true }).fill(`bounce@${SIM}`);
      await page.getByLabel('Recipient', { exact: true }).press('Enter');
    });
    await expect(recipients()).resolves.toEqual([`bounce@${SIM}`]);
    await filter(async () => {
      await page.getByLabel('Recipient', { exact: true }).fill('deliv*');
      await page.getByLabel('Recipient', { exact: true }).press('Enter');
    });
    await expect(recipients()).resolves.toEqual([`delivered@${SIM}`]);

    // A range that ends before today leaves nothing, and says the filters did it.
    await filter(() => page.getByLabel('Sent until', { exact: true }).fill('2020-01-31'));
    await expect(rows().count()).resolves.toBe(0);
    await expect(page.locator('#empty').textContent()).resolves.toBe('No emails match these filters');

    await filter(() => page.getByRole('button', { name: 'Clear' }).click());
    const today = new Date().toISOString().slice(0, 10);
    await filter(() => page.getByLabel('Sent from', { exact: true }).fill(today));
    await expect(rows().count()).resolves.toBe(3);
    await filter(() => page.getByRole('button', { name: 'Clear' }).click());
    await expect(rows().count()).resolves.toBe(3);
  });

  it('when a row Details button is reached with Tab and pressed, then the panel shows the fields and the timeline; Escape closes it', async () => {
    const [first] = await rowIds();
    await page.locator('#refresh').focus();
    let reached = false;
    for (let i = 0; i < 40 && !reached; i++) {
      await page.keyboard.press('Tab');
      reached = await page.evaluate(() => document.activeElement?.dataset.action === 'details');
    }
    expect(reached).toBe(true);
    await expect(page.evaluate(() => document.activeElement!.closest('tr')!.dataset.id)).resolves.toBe(first);
    await page.keyboard.press('Enter');

    const panel = page.getByRole('dialog', { name: /Email to / });
    await panel.waitFor();
    await panel.locator('.timeline li').first().waitFor();
    await expect(panel.getByRole('heading', { name: 'Timeline' }).isVisible()).resolves.toBe(true);
    expect(await panel.locator('.timeline li').count()).toBeGreaterThan(0);
    await page.screenshot({ path: path.join(ARTIFACTS, 'email-log-detail.png') });
    await expect(panel.locator('dd').first().textContent()).resolves.toBe('Mailroom test email');

    // Focus stays inside the dialog.
    for (let i = 0; i < 8; i++) {
      await page.keyboard.press('Tab');
      expect(await page.evaluate(() => !!document.activeElement?.closest('#detail'))).toBe(true);
    }
    await page.keyboard.press('Escape');
    await panel.waitFor({ state: 'hidden' });
    await expect(page.evaluate(() => document.activeElement.dataset.action)).resolves.toBe('details');
  });

  it('when Resend is clicked and confirmed in the dialog, then the new entry shows at the top; cancelling sends nothing', async () => {
    const original = (await rowIds())[2]!; // delivered@, the oldest
    const before = sink.messages.length;

    await rowFor(original)
      .getByRole('button', { name: /^Resend/ })
      .click();
    const dialog = page.getByRole('dialog', { name: 'Resend this email?' });
    await dialog.waitFor();
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'hidden' });
    await expect(rowIds()).resolves.toHaveLength(3);

    await rowFor(original)
      .getByRole('button', { name: /^Resend/ })
      .click();
    await dialog.waitFor();
    await expect(dialog.textContent()).resolves.toContain(`delivered@${SIM}`);
    await page.screenshot({ path: path.join(ARTIFACTS, 'email-log-resend.png') });
    await dialog.getByRole('button', { name: 'Resend email' }).click();
    await dialog.waitFor({ state: 'hidden' });

    await page.waitForFunction((n) => document.querySelectorAll('#rows > tr').length === n, 4);
    const [top] = await rowIds();
    expect(top).not.toBe(original);
    const row = rowFor(top!);
    await expect(cell(row, 'Recipient').textContent()).resolves.toBe(`delivered@${SIM}`);
    await expect(page.locator('#notice').textContent()).resolves.toContain('The new entry is at the top');
    // The page follows the queued entry until the worker has sent it.
    await cell(row, 'Status').locator('.badge-sent').waitFor({ timeout: 20_000 });
    expect(sink.messages.length).toBe(before + 1);

    const api = (await sys.request('GET', `/v1/email-logs/${original}`, { key: ws.keys.admin })).body;
    expect(api.resendCount).toBe(1);

    // The new entry's details link back to the original, whose details list the resend.
    await row.getByRole('button', { name: /^Details/ }).click();
    const panel = page.getByRole('dialog', { name: /Email to / });
    await panel.getByRole('link', { name: 'the original email' }).click();
    await panel.getByRole('link', { name: 'Resend 1' }).waitFor();
    await expect(panel.locator('code', { hasText: top! }).count()).resolves.toBe(1);
    await panel.getByRole('button', { name: 'Close' }).click();
    await panel.waitFor({ state: 'hidden' });
  });

  it('when an email carries markup in its subject, then the page shows it as text', async () => {
    const subject = '<img src=x onerror="window.__xss=1"><b>Bold</b>';
    const id = await sendAndSettle({ to: `delivered+xss@${SIM}`, subject });
    await refresh();
    await rowFor(id)
      .getByRole('button', { name: /^Details/ })
      .click();
    const panel = page.getByRole('dialog', { name: /Email to / });
    await expect(panel.locator('dd').first().textContent()).resolves.toBe(subject);
    expect(await page.locator('#detail img, #detail b').count()).toBe(0);
    expect(await page.evaluate(() => window.__xss)).toBeUndefined();
    await page.keyboard.press('Escape');
  });

  it('when a custom email is connected, then the banner shows and custom sends say "Custom email"', async () => {
    const put = await sys.request('PUT', '/v1/settings/email', {
      key: ws.keys.admin,
      body: { kind: 'smtp', host: '127.0.0.1', port: customSink.port, secure: false, from: 'me@acme.test' },
    });
    expect(put.status).toBe(200);
    const id = await sendAndSettle({ to: `client@${SIM}`, type: 'proposal', subject: 'Proposal P-7' });
    await refresh();

    const list = (await sys.request('GET', '/v1/email-logs?limit=1', { key: ws.keys.admin })).body;
    expect(list.customEmailConnected).toBe(true);
    const banner = page.getByRole('note');
    await expect(banner.isVisible()).resolves.toBe(true);
    await expect(banner.textContent()).resolves.toBe(list.banner);
    expect(list.banner).toMatch(/SPF/);

    const row = rowFor(id);
    await expect(cell(row, 'Send method').textContent()).resolves.toBe('Custom email');
    await expect(cell(row, 'From').textContent()).resolves.toContain('me@acme.test');
    await expect(cell(row, 'Type').textContent()).resolves.toBe('Proposal');

    await page.screenshot({ path: path.join(ARTIFACTS, 'email-log.png'), fullPage: true });
    // On a laptop the table fits: neither the page nor the table scrolls sideways.
    const overflow = await page.evaluate(() => {
      const wrap = document.querySelector('.table-wrap');
      return [document.documentElement.scrollWidth - window.innerWidth, wrap.scrollWidth - wrap.clientWidth];
    });
    expect(overflow).toEqual([0, 0]);
  });

  it('when the page is seen on a phone, then rows become cards and nothing overflows sideways', async () => {
    const phone = await newContext({ width: 390, height: 844 });
    try {
      const p = await phone.newPage();
      await signIn(p, ws.keys.admin);
      await rows(p).first().waitFor();
      const overflow = await p.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      expect(overflow).toBeLessThanOrEqual(0);
      // Each row is a card: the label of every cell is shown next to its value.
      const display = await rows(p)
        .first()
        .evaluate((tr) => getComputedStyle(tr).display);
      expect(display).toBe('block');
      const label = await rows(p)
        .first()
        .locator('[data-label="Status"]')
        .evaluate((td) => getComputedStyle(td, '::before').content);
      expect(label).toBe('"Status"');
      await p.screenshot({ path: path.join(ARTIFACTS, 'email-log-phone.png'), fullPage: true });

      // A small laptop: the table scrolls inside its frame with the recipient column kept in view, the page does not.
      await p.setViewportSize({ width: 1024, height: 768 });
      const frame = await p.evaluate(() => {
        const wrap = document.querySelector('.table-wrap');
        wrap.scrollLeft = wrap.scrollWidth;
        const th = document.querySelector('#rows th').getBoundingClientRect();
        return {
          page: document.documentElement.scrollWidth - window.innerWidth,
          scrolls: wrap.scrollWidth > wrap.clientWidth,
          recipientLeft: Math.round(th.left - wrap.getBoundingClientRect().left),
        };
      });
      expect(frame).toEqual({ page: 0, scrolls: true, recipientLeft: 1 });
    } finally {
      await phone.close();
    }
  });

  it('when there are more entries than a page, then "Load more" appends the next page and goes away at the end', async () => {
    const existing = await rows().count();
    const sent = await Promise.all(
      Array.from({ length: 51 - existing }, (_, i) => send({ to: `bulk+${i}@${SIM}`, type: 'digest', subject: `Digest ${i}` })),
    );
    await Promise.all(sent.map((r) => settled(r.body.id)));
    await refresh();
    await expect(rows().count()).resolves.toBe(50);
    await expect(page.locator('#list-summary').textContent()).resolves.toBe('Showing 50 emails, more available');
    const firstPage = await rowIds();

    await page.getByRole('button', { name: 'Load more' }).click();
    await page.waitForFunction(() => document.querySelectorAll('#rows > tr').length === 51);
    const all = await rowIds();
    expect(all.slice(0, 50)).toEqual(firstPage);
    expect(new Set(all).size).toBe(51);
    expect(await page.locator('#load-more').isHidden()).toBe(true);
    // The button is gone: focus moved to the row it loaded.
    await expect(page.evaluate(() => document.activeElement?.closest('tr')?.dataset.id)).resolves.toBe(all[50]);
  });

  it('when the stored key stops working or the user signs out, then the sign-in form comes back', async () => {
    await page.evaluate(() => sessionStorage.setItem('mailroom.adminKey', 'mr_admin_revoked'));
    await page.reload();
    await page.getByText('Your session has ended').waitFor();
    expect(await page.getByLabel('Admin API key', { exact: true }).isVisible()).toBe(true);

    await signIn(page, ws.keys.admin);
    await rows().first().waitFor();
    await page.getByRole('button', { name: 'Sign out' }).click();
    expect(await page.getByLabel('Admin API key', { exact: true }).isVisible()).toBe(true);
    await expect(page.evaluate(() => sessionStorage.getItem('mailroom.adminKey'))).resolves.toBeNull();
    await expect(rows().count()).resolves.toBe(0);
  });

  it('when all of the above ran, then no page reported a script error or a CSP violation', () => {
    expect(problems).toEqual([]);
  });
});
