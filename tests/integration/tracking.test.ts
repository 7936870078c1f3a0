import { startSmtpSink, type SmtpSink } from '../../infra/dev/smtp-sink';
import { startTestSystem, waitFor, type TestSystem } from '../support/system';
import { findEntry } from '../support/log-entry';

const SIM = 'simulator.mailroom.test';
const CHROME = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36';
const HTML =
  '<html><body><p><a href="https://example.com/pay?inv=1&amp;x=2">Pay</a> <a href="mailto:billing@example.com">Ask</a></p></body></html>';

/** A raw message with quoted-printable undone (soft line breaks and `=XX`). */
const unQuoted = (raw: string) =>
  raw.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));

/** The HTML part as sent (quoted-printable decoded). */
function sentHtml(raw: string): string {
  const qp = unQuoted(raw);
  return qp.slice(qp.indexOf('<html>'), qp.indexOf('</html>') + 7);
}

describe('open and click tracking over real HTTP', () => {
  let sink: SmtpSink;
  let sys: TestSystem;
  let ws: { id: string; keys: { send: string; admin: string } };

  beforeAll(async () => {
    sink = await startSmtpSink();
    // The time window is covered by the unit tests; here scanner user agents make machine opens.
    sys = await startTestSystem({ env: { MANAGED_SMTP_URL: sink.url, MACHINE_OPEN_WINDOW_SECONDS: '0', EVENTS_BATCH_WAIT_MS: '5' } });
    ws = await sys.createWorkspace('Tracking');
  });
  afterAll(async () => {
    await sys?.close();
    await sink?.close();
  });

  const entry = (id: string) => findEntry(sys.mongo.db(sys.config.logsMongo.db), id);
  const send = async (extra: Record<string, unknown> = {}) => {
    const r = await sys.request('POST', '/v1/emails', {
      key: ws.keys.send,
      body: { to: `delivered@${SIM}`, type: 'invoice', subject: 'Invoice', html: HTML, ...extra },
    });
    await waitFor(async () => (await entry(r.body.id))?.status === 'sent');
    return { id: r.body.id as string, html: sentHtml(sink.messages.find((m) => m.mailroomId === r.body.id)!.raw) };
  };
  const get = (path: string, ua = CHROME) => fetch(sys.api.url + path, { redirect: 'manual', headers: { 'user-agent': ua } });

  it('when an email is sent, then its links are rewritten, mailto is kept, and a pixel is added', async () => {
    const { html } = await send();
    expect(html).toMatch(/<a href="http:\/\/localhost:\d+\/t\/c\/c1\.[^"]+">Pay<\/a>/);
    expect(html).toContain('href="mailto:billing@example.com"');
    expect(html).toMatch(/<img src="[^"]+\/t\/o\/o1\.[^"]+\.gif"[^>]*><\/body>/);
  });

  it('when the pixel is fetched, then a GIF comes back uncached whatever the token, and only valid human opens count', async () => {
    const { id, html } = await send();
    const pixel = /\/t\/o\/[^"]+\.gif/.exec(html)![0];
    for (const path of [pixel, pixel.replace('o1.em_', 'o1.em_X'), '/t/o/garbage.gif']) {
      const r = await get(path);
      expect(r.status).toBe(200);
      expect(r.headers.get('content-type')).toBe('image/gif');
      expect(r.headers.get('cache-control')).toMatch(/no-store/);
      expect(
        Buffer.from(await r.arrayBuffer())
          .subarray(0, 6)
          .toString(),
      ).toBe('GIF89a');
    }
    await get(pixel, 'Mozilla/5.0'); // Apple Mail Privacy Protection prefetch
    await get(pixel, 'Mozilla/5.0 (compatible; Barracuda Sentinel)');
    const d = await waitFor(async () => {
      const e = await entry(id);
      return e?.timeline?.length === 3 ? e : null;
    });
    expect(d).toMatchObject({ status: 'opened', opens: 1 });
    expect(d.openedAt).toBeInstanceOf(Date);
    expect(d.timeline.filter((t: { machine?: boolean }) => t.machine)).toHaveLength(2);
  });

  it('when a tracked link is clicked, then it redirects only to the signed URL; a tampered token is 400 without Location', async () => {
    const { id, html } = await send();
    const click = /\/t\/c\/[^"]+/.exec(html)![0];
    const ok = await get(click);
    expect(ok.status).toBe(302);
    expect(ok.headers.get('location')).toBe('https://example.com/pay?inv=1&x=2');
    const [v, emailId, , mac] = click.slice('/t/c/'.length).split('.');
    const evil = `/t/c/${v}.${emailId}.${Buffer.from('https://evil.example.net/').toString('base64url')}.${mac}`;
    for (const bad of [evil, click.slice(0, -2) + 'AA', '/t/c/nonsense']) {
      const r = await get(bad);
      expect(r.status).toBe(400);
      expect(r.headers.get('location')).toBeNull();
    }
    const d = await waitFor(async () => {
      const e = await entry(id);
      return e?.clicks === 1 ? e : null;
    });
    expect(d).toMatchObject({ status: 'clicked', clicks: 1 });
    expect(d.timeline[0]).toMatchObject({ type: 'clicked', url: 'https://example.com/pay?inv=1&x=2', provider: 'tracking' });
  });

  it('when a text-only email is sent, then its bare URLs are tracked links (punctuation kept outside) and a click counts', async () => {
    const text = 'Pay here: https://example.com/pay?inv=7&x=2. Terms (https://example.com/terms), or mail billing@example.com.';
    const r = await sys.request('POST', '/v1/emails', {
      key: ws.keys.send,
      body: { to: `delivered@${SIM}`, type: 'invoice', subject: 'Text only', text },
    });
    await waitFor(async () => (await entry(r.body.id))?.status === 'sent');
    const raw = sink.messages.find((m) => m.mailroomId === r.body.id)!.raw;
    const body = unQuoted(raw.slice(raw.search(/\r?\n\r?\n/)));
    const links = [...body.matchAll(/http:\/\/localhost:\d+(\/t\/c\/c1\.[\w-]+\.[\w-]+\.[\w-]+)/g)].map((m) => m[1]!);
    expect(links).toHaveLength(2);
    expect(body).toMatch(
      /\/t\/c\/c1\.[\w-]+\.[\w-]+\.[\w-]+\. Terms \(http:\/\/localhost:\d+\/t\/c\/c1\.[\w-]+\.[\w-]+\.[\w-]+\), or mail billing@example\.com\./,
    );
    expect(body).not.toContain('https://example.com/pay');
    const click = await get(links[0]!);
    expect(click.status).toBe(302);
    expect(click.headers.get('location')).toBe('https://example.com/pay?inv=7&x=2');
    expect((await get(links[1]!)).headers.get('location')).toBe('https://example.com/terms');
    const d = await waitFor(async () => {
      const e = await entry(r.body.id);
      return e?.clicks === 2 ? e : null;
    });
    expect(d.status).toBe('clicked');
  });

  it('when tracking is off for the send or for the workspace, then the HTML goes out untouched', async () => {
    expect((await send({ tracking: false })).html).toBe(HTML);
    expect((await sys.request('PUT', '/v1/settings/tracking', { key: ws.keys.admin, body: { enabled: false } })).body).toEqual({
      enabled: false,
      globallyEnabled: true,
    });
    expect((await send()).html).toBe(HTML);
    await sys.request('PUT', '/v1/settings/tracking', { key: ws.keys.admin, body: { enabled: true } });
    expect((await send()).html).not.toBe(HTML);
  });
});
