import { createEmailLogRepository, newId } from '@mailroom/shared';
import { startSmtpSink, type SmtpSink } from '../../infra/dev/smtp-sink';
import { createPreviewTokens } from '../../apps/api/src/preview';
import { startTestSystem, waitFor, type TestSystem } from '../support/system';
import { findEntry, logEntry } from '../support/log-entry';
import { sendOutcome } from '../support/send-outcome';

const SIM = 'simulator.mailroom.test';
const PDF = Buffer.from('%PDF-1.4 a small invoice').toString('base64');

describe('what was sent: GET /v1/email-logs/:id/content and the preview', () => {
  let sink: SmtpSink;
  let sys: TestSystem;
  let ws: { id: string; keys: { send: string; admin: string } };
  let other: { id: string; keys: { send: string; admin: string } };
  let id: string;

  beforeAll(async () => {
    sink = await startSmtpSink();
    sys = await startTestSystem({ env: { MANAGED_SMTP_URL: sink.url } });
    ws = await sys.createWorkspace('Content');
    other = await sys.createWorkspace('Other');
    const r = await sys.request('POST', '/v1/emails', {
      key: ws.keys.send,
      body: {
        to: `delivered@${SIM}`,
        cc: ['cc@example.com'],
        bcc: ['audit@example.com'],
        replyTo: 'billing@example.com',
        type: 'invoice',
        subject: 'Invoice INV-9',
        html: '<p>Hello <img src="https://images.example.com/logo.png"></p><meta http-equiv="refresh" content="0;url=https://evil.example.com">',
        text: 'Hello',
        headers: { 'X-Campaign': 'q4' },
        attachments: [{ filename: 'INV-9.pdf', content: PDF, contentType: 'application/pdf' }],
      },
    });
    expect(r.status).toBe(202);
    id = r.body.id;
    await waitFor(async () => (await findEntry(sys.mongo.db(sys.config.logsMongo.db), id))?.status === 'sent');
  });
  afterAll(async () => {
    await sys?.close();
    await sink?.close();
  });

  it('when an admin asks, then the content comes back as submitted, attachments listed without their bytes', async () => {
    const r = await sys.request('GET', `/v1/email-logs/${id}/content`, { key: ws.keys.admin });
    expect(r.status).toBe(200);
    expect(r.headers.get('cache-control')).toBe('no-store');
    expect(r.body).toEqual({
      subject: 'Invoice INV-9',
      from: 'Mailroom <notifications@mailroom.test>',
      to: `delivered@${SIM}`,
      cc: ['cc@example.com'],
      bcc: ['audit@example.com'],
      replyTo: 'billing@example.com',
      html: expect.stringContaining('<img src="https://images.example.com/logo.png">'),
      text: 'Hello',
      headers: [{ name: 'X-Campaign', value: 'q4' }],
      attachments: [{ filename: 'INV-9.pdf', contentType: 'application/pdf', size: Buffer.from(PDF, 'base64').length }],
    });
    // As submitted: no tracking pixel, no rewritten links.
    expect(r.body.html).not.toContain('/t/o/');
    expect(JSON.stringify(r.body)).not.toContain(PDF);
  });

  it('when a send key, another workspace or an entry past retention asks, then 403, 404 and 404', async () => {
    expect((await sys.request('GET', `/v1/email-logs/${id}/content`, { key: ws.keys.send })).status).toBe(403);
    expect((await sys.request('GET', `/v1/email-logs/${id}/content`, { key: other.keys.admin })).status).toBe(404);
    expect((await sys.request('POST', `/v1/email-logs/${id}/preview-link`, { key: other.keys.admin })).status).toBe(404);
    const old = logEntry(ws.id, { sentAt: new Date(Date.now() - 200 * 86_400_000) });
    await createEmailLogRepository(sys.mongo.db(sys.config.logsMongo.db)).importEntries(
      [old],
      [{ _id: old._id, workspaceId: ws.id, sentAt: old.sentAt, to: old.recipient, subject: 'old', text: 'old' }],
    );
    expect((await sys.request('GET', `/v1/email-logs/${old._id}`, { key: ws.keys.admin })).status).toBe(200);
    const gone = await sys.request('GET', `/v1/email-logs/${old._id}/content`, { key: ws.keys.admin });
    expect(gone.status).toBe(404);
    expect(gone.body.error.code).toBe('not_found');
  });

  it('when the page asks for a preview link, then the document it opens runs nothing and loads remote images only with images=1', async () => {
    const link = await sys.request('POST', `/v1/email-logs/${id}/preview-link`, { key: ws.keys.admin });
    expect(link.status).toBe(201);
    expect(Date.parse(link.body.expiresAt) - Date.now()).toBeGreaterThan(500_000);
    const page = await fetch(sys.api.url + link.body.url);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const csp = page.headers.get('content-security-policy')!;
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain('img-src data:;');
    expect(csp).toContain('sandbox');
    expect(csp).not.toContain('script-src');
    const html = await page.text();
    expect(html).toContain('<img src="https://images.example.com/logo.png">');
    expect(html).not.toContain('http-equiv');
    const withImages = await fetch(`${sys.api.url}${link.body.url}&images=1`);
    expect(withImages.headers.get('content-security-policy')).toContain('img-src data: https: http:;');

    // The token is for this entry only, and only while it lasts.
    // Its last two characters changed (to "AA", or "BB" for a token that ends in "AA" already: one in a few hundred did, and was not forged).
    const forged = link.body.url.replace(
      /token=([^&]+)/,
      (_m: string, t: string) => `token=${t.slice(0, -2)}${t.endsWith('AA') ? 'BB' : 'AA'}`,
    );
    expect((await fetch(sys.api.url + forged)).status).toBe(401);
    expect((await fetch(`${sys.api.url}/v1/email-logs/${id}/preview`)).status).toBe(400);
    const tokens = createPreviewTokens(Buffer.alloc(32, 1));
    const { token } = tokens.issue(ws.id, id, new Date(Date.now() - 3_600_000));
    expect(tokens.verify(token, id)).toBeNull();
    expect(tokens.verify(tokens.issue(ws.id, id).token, id)).toEqual({ workspaceId: ws.id });
    expect(tokens.verify(tokens.issue(ws.id, id).token, 'em_0000000000000000000000')).toBeNull();
  });

  it('when the email has only text, then the preview shows it escaped as preformatted text', async () => {
    const r = await sys.request('POST', '/v1/emails', {
      key: ws.keys.send,
      body: { to: `delivered@${SIM}`, type: 'invoice', subject: 'Text', text: '<b>not bold</b> & more' },
    });
    await waitFor(async () => (await findEntry(sys.mongo.db(sys.config.logsMongo.db), r.body.id))?.status === 'sent');
    const link = await sys.request('POST', `/v1/email-logs/${r.body.id}/preview-link`, { key: ws.keys.admin });
    const html = await (await fetch(sys.api.url + link.body.url)).text();
    expect(html).toContain('&#60;b&#62;not bold&#60;/b&#62; &#38; more');
    expect(html).toContain('<pre');
  });
});

describe('an entry is never visible without its content', () => {
  let sys: TestSystem;
  beforeAll(async () => {
    sys = await startTestSystem({ env: { MANAGED_SMTP_URL: 'smtp://127.0.0.1:1' }, worker: false });
  });
  afterAll(async () => {
    await sys?.close();
  });

  it("when an outcome's content cannot be written, then its entry is not written either, and both go in on the next write", async () => {
    const db = sys.mongo.db(sys.config.logsMongo.db);
    const repo = createEmailLogRepository(db);
    await repo.ensureIndexes();
    const ws = await sys.createWorkspace('Order');
    const id = newId('em');
    // A content over MongoDB's 16 MiB document limit: its insert fails, as any failed write of the content would.
    const huge = sendOutcome({
      id,
      workspaceId: ws.id,
      content: { to: 'a@example.com', subject: 'Huge', text: 'x'.repeat(17 * 1024 * 1024) },
    });
    await expect(repo.recordOutcome(huge)).rejects.toThrow();
    // The caller (the outbox) stages the outcome; meanwhile the log shows nothing it cannot open.
    expect(await findEntry(db, id)).toBeNull();
    // The staged outcome written again, now with a content that fits (as after a transient failure).
    expect(await repo.recordOutcome({ ...huge, content: { to: 'a@example.com', subject: 'Huge', text: 'x' } })).toBe(true);
    expect(await findEntry(db, id)).toMatchObject({ status: 'sent' });
    expect(await repo.getContent(ws.id, id)).toMatchObject({ text: 'x' });
  });
});
