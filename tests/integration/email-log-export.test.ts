import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { csvCell } from '@mailroom/shared';
import { startTestSystem, type TestSystem } from '../support/system';
import { insertEntries, logEntry } from './email-log-fixtures';

// A forced collection before each heap sample measures what is retained, not garbage.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const ROWS = 100_000;
const MB = 1024 * 1024;

describe('email log export and stats', () => {
  let sys: TestSystem;
  let ws: { id: string; keys: { send: string; admin: string } };

  beforeAll(async () => {
    sys = await startTestSystem({ env: { MANAGED_SMTP_URL: 'smtp://127.0.0.1:1' }, worker: false });
    ws = await sys.createWorkspace('Export');
  });
  afterAll(async () => {
    await sys?.close();
  });

  it('when a cell could be read as a formula or breaks the CSV, then it is quoted and neutralised', () => {
    expect(csvCell('=HYPERLINK("x")')).toBe(`"'=HYPERLINK(""x"")"`);
    expect(csvCell('+1')).toBe("'+1");
    expect(csvCell('-2')).toBe("'-2");
    expect(csvCell('@sum')).toBe("'@sum");
    expect(csvCell('a,b')).toBe('"a,b"');
    expect(csvCell('line\nbreak')).toBe('"line\nbreak"');
    expect(csvCell(null)).toBe('');
    expect(csvCell('plain')).toBe('plain');
  });

  it('when asking for stats, then counts by status, type and method and the rates come per day and in total', async () => {
    const other = await sys.createWorkspace('Stats');
    const d1 = new Date('2026-10-01T10:00:00Z');
    const d2 = new Date('2026-10-02T23:59:00Z');
    const make = (sentAt: Date, status: string, type: string, sendMethod: string, n: number) =>
      Array.from({ length: n }, () =>
        logEntry(other.id, { sentAt, status: status as never, type: type as never, sendMethod: sendMethod as never }),
      );
    await insertEntries(sys, [
      ...make(d1, 'delivered', 'invoice', 'managed', 6),
      ...make(d1, 'opened', 'invoice', 'managed', 2),
      ...make(d1, 'bounced', 'proposal', 'managed', 1),
      ...make(d1, 'complained', 'proposal', 'custom', 1),
      ...make(d2, 'sent', 'digest', 'custom', 3),
      ...make(d2, 'send_failed', 'digest', 'test', 1),
      ...make(new Date('2026-10-05T00:00:00Z'), 'sent', 'digest', 'custom', 7),
    ]);
    const r = await sys.request('GET', '/v1/email-logs/stats?since=2026-10-01&until=2026-10-03', { key: other.keys.admin });
    expect(r.status).toBe(200);
    expect(r.body.days.map((d: { day: string }) => d.day)).toEqual(['2026-10-01', '2026-10-02']);
    expect(r.body.days[0]).toMatchObject({
      total: 10,
      byStatus: { delivered: 6, opened: 2, bounced: 1, complained: 1 },
      byType: { invoice: 8, proposal: 2 },
      bySendMethod: { managed: 9, custom: 1 },
      rates: { delivery: 0.9, bounce: 0.1, complaint: 0.1, open: 0.2222 },
      // How many got at least this far, and how many ended in each problem.
      funnel: { sent: 10, delivered: 9, opened: 2, clicked: 0, bounced: 1, complained: 1, failed: 0 },
    });
    expect(r.body.days[1]).toMatchObject({
      total: 4,
      byStatus: { sent: 3, send_failed: 1 },
      rates: { delivery: 0, bounce: 0, open: null },
      funnel: { sent: 3, delivered: 0, failed: 1 },
    });
    expect(r.body.totals).toMatchObject({
      total: 14,
      byType: { invoice: 8, proposal: 2, digest: 4 },
      bySendMethod: { managed: 9, custom: 4, test: 1 },
    });
    expect(r.body.totals.rates.delivery).toBeCloseTo(9 / 13, 4);

    const bad = await sys.request('GET', '/v1/email-logs/stats?since=2026-10-05&until=2026-10-01', { key: other.keys.admin });
    expect(bad.status).toBe(400);
    expect(bad.body.error.fields[0].path).toBe('query.since');
  });

  it('when exporting 100,000 entries, then every row streams out while the heap stays bounded', async () => {
    const t0 = Date.now() - 10 * 86_400_000;
    const pad = 'x'.repeat(300);
    const docs = Array.from({ length: ROWS }, (_, i) =>
      logEntry(ws.id, {
        sentAt: new Date(t0 + i * 1000),
        recipient: `client${i}@example.com`,
        subject: i === 0 ? '=cmd|" /C calc"!A0, "quoted"\nsecond line' : `Invoice INV-${i} ${pad}`,
        status: i % 10 === 0 ? 'send_failed' : 'delivered',
        error: i % 10 === 0 ? `550 rejected ${pad}` : null,
      }),
    );
    await insertEntries(sys, docs);
    docs.length = 0;

    gc();
    const baseline = process.memoryUsage().heapUsed;
    let peak = 0;
    const res = await fetch(`${sys.api.url}/v1/email-logs/export.csv`, { headers: { authorization: `Bearer ${ws.keys.admin}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/csv/);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let lines = 0;
    let bytes = 0;
    let head = '';
    let chunks = 0;
    let carry = '';
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      bytes += value.length;
      const text = decoder.decode(value, { stream: true });
      if (head.length < 4000) head += text;
      // A row end may be split between two chunks: carry the previous chunk's last character.
      const seen = carry + text;
      for (let i = seen.indexOf('\r\n'); i !== -1; i = seen.indexOf('\r\n', i + 2)) lines++;
      carry = text.slice(-1) === '\r' ? '\r' : '';
      if (++chunks % 200 === 0) {
        gc();
        peak = Math.max(peak, process.memoryUsage().heapUsed - baseline);
      }
    }
    // Header + rows; the first subject holds a line break inside quotes, which is not a row end (\n, not \r\n).
    expect(lines).toBe(ROWS + 1);
    expect(bytes).toBeGreaterThan(ROWS * 300);
    expect(peak).toBeLessThan(50 * MB);
    expect(head.split('\r\n')[0]).toBe('Recipient,Status,Type,From,Error,Send method,Opened at,Sent at,Id,Subject,Error code');
    expect(head.split('\r\n')[1]).toMatch(/^client99999@example\.com,Delivered,invoice,/);
    expect(head).not.toContain(',=cmd');
    process.stdout.write(`[export] ${ROWS} rows, ${(bytes / MB).toFixed(1)} MB, peak retained heap growth ${(peak / MB).toFixed(1)} MB\n`);
  }, 300_000);

  it('when the export is filtered, then only matching rows come out and formula cells are neutralised', async () => {
    const res = await sys.request('GET', '/v1/email-logs/export.csv?q=%3Dcmd', { key: ws.keys.admin });
    expect(res.status).toBe(200);
    const lines = String(res.body).split('\r\n').filter(Boolean);
    expect(lines).toHaveLength(2);
    expect(lines[1]).toContain(`"'=cmd|"" /C calc""!A0, ""quoted""\nsecond line"`);
    const bad = await sys.request('GET', '/v1/email-logs/export.csv?status=nope', { key: ws.keys.admin });
    expect(bad.status).toBe(400);
    expect(bad.body.error.fields[0].path).toBe('query.status');
  }, 120_000);
});
