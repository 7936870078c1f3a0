import { request as httpRequest } from 'node:http';
import { Queue } from 'bullmq';
import { startSmtpSink, type SmtpSink } from '../../infra/dev/smtp-sink';
import { OPERATOR_TOKEN, startTestSystem, type TestSystem } from '../support/system';
import { countEntries } from '../support/log-entry';
import { seededRandom } from '../../infra/dev/seeded-random';
import { API_ROUTES } from '../../apps/api/src/openapi';

const nested = (depth: number): unknown => (depth === 0 ? 'x' : { a: nested(depth - 1) });

/** Values that are wrong for almost any field. */
const BAD_VALUES: Array<(r: () => number) => unknown> = [
  () => null,
  () => 12345,
  () => true,
  () => [],
  () => ({}),
  () => ({ $gt: '' }),
  () => ({ $ne: null }),
  () => ['a', { $where: 'sleep(1000)' }],
  () => 'a'.repeat(100_000),
  () => 'evil@example.com\r\nBcc: victim@example.com',
  () => 'Subject\r\nX-Injected: 1',
  () => '\u0000\u0001\u0002',
  () => '\ud800',
  () => nested(200),
  (r) => String(r()),
  () => -1,
  () => 1e308,
  () => '../../etc/passwd',
  () => '<script>alert(1)</script>',
];

/** Parameters no route names: typos, other cases, bracket syntax, operators. */
const MISSPELT = [
  'stauts',
  'Status',
  'recipeint',
  'sendmethod',
  'limt',
  'status[$ne]',
  'recipient[$gt]',
  'q[]',
  'since[0]',
  '$where',
  '__proto__',
  'constructor',
];

const SEND_FIELDS = ['to', 'type', 'subject', 'html', 'text', 'cc', 'bcc', 'replyTo', 'headers', 'attachments', 'reference', 'metadata'];

function badSend(r: () => number): unknown {
  const body: Record<string, unknown> = { to: 'x@simulator.mailroom.test', type: 'invoice', subject: 'Hi', text: 'hello' };
  // Always break at least one field, so no generated request is a valid send.
  const field = SEND_FIELDS[Math.floor(r() * SEND_FIELDS.length)]!;
  let value = BAD_VALUES[Math.floor(r() * BAD_VALUES.length)]!(r);
  if (field === 'html' || field === 'text' || field === 'subject')
    value = typeof value === 'string' && value.length < 100_000 ? `${value}\r\n` : value;
  if ((field === 'html' || field === 'text') && typeof value === 'string') value = 12345;
  body[field] = value;
  // Some bad values are valid for optional fields ({} headers, [] cc): an unknown key keeps
  // every generated send invalid, while zod still checks every field.
  body[`$${field}`] = 1;
  return body;
}

interface Case {
  method: string;
  path: string;
  body?: string | Buffer;
  headers?: Record<string, string>;
}

function raw(c: Case, port: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    // Content-Length always: Node sends a GET or DELETE body unframed otherwise.
    const length = c.body === undefined ? {} : { 'content-length': String(Buffer.byteLength(c.body)) };
    const req = httpRequest({ host: '127.0.0.1', port, method: c.method, path: c.path, headers: { ...c.headers, ...length } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    if (c.body !== undefined) req.end(c.body);
    else req.end();
  });
}

describe('fuzz: malformed requests to every public route', () => {
  let sink: SmtpSink;
  let sys: TestSystem;

  beforeAll(async () => {
    sink = await startSmtpSink();
    sys = await startTestSystem({
      env: {
        MANAGED_SMTP_URL: sink.url,
        RATE_LIMIT_SEND_PER_MINUTE: '0',
        RATE_LIMIT_ADMIN_PER_MINUTE: '0',
        WEBHOOK_SECRET: 'fuzz-webhook-secret-0123456789',
        MAILGUN_SIGNING_KEY: 'fuzz-mailgun-key',
        POSTMARK_WEBHOOK_AUTH: 'user:pass',
      },
      worker: false,
    });
  });
  afterAll(async () => {
    await sys?.close();
    await sink?.close();
  });

  it('when 10,000 generated malformed requests arrive, then every answer is a 4xx with a message (or a harmless read), none is 5xx, and nothing is written', async () => {
    const ws = await sys.createWorkspace('Fuzz');
    const port = sys.api.port;
    const r = seededRandom(20261127);
    const pick = <T>(xs: T[]) => xs[Math.floor(r() * xs.length)]!;
    const json = (v: unknown) => {
      try {
        return JSON.stringify(v);
      } catch {
        return '{';
      }
    };
    const keys = [ws.keys.send, ws.keys.admin, OPERATOR_TOKEN, 'mr_admin_forged', '', 'Bearer', 'x'.repeat(5000)];
    const auth = () => {
      const k = pick(keys);
      return { authorization: r() < 0.1 ? `Basic ${k}` : `Bearer ${k}` };
    };
    const garbageBody = (): string | Buffer =>
      pick<() => string | Buffer>([
        () => json(badSend(r)),
        () => '{"to": ',
        () => Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]),
        () => json(nested(500)),
        () => json([1, 2, 3]),
        () => '"just a string"',
        () =>
          json({
            kind: pick(['smtp', 'google', 'outlook', 'imap']),
            host: pick(BAD_VALUES)(r),
            port: pick(BAD_VALUES)(r),
            from: pick(BAD_VALUES)(r),
          }),
        () => json({ to: pick(BAD_VALUES)(r), $extra: 1 }),
        () => json({ name: pick(BAD_VALUES)(r), $extra: 1 }),
        () => json({ now: pick(BAD_VALUES)(r), $extra: 1 }),
        () => json({ enabled: pick(BAD_VALUES)(r), $extra: 1 }),
      ])();
    // Lone surrogates cannot be URI-encoded: send invalid UTF-8 bytes instead.
    const encode = (v: string) => {
      try {
        return encodeURIComponent(v);
      } catch {
        return '%ED%A0%80%FF';
      }
    };
    const q = () =>
      encode(String(pick([...BAD_VALUES, () => '{"$gt":""}', () => 'em_../../x', () => '%00', () => 'AAAA'])(r)).slice(0, 3000));
    const makers: Array<() => Case> = [
      () => ({ method: 'POST', path: '/v1/emails', body: garbageBody(), headers: { ...auth(), 'content-type': 'application/json' } }),
      () => ({
        method: 'POST',
        path: '/v1/emails',
        body: json(badSend(r)),
        headers: {
          ...auth(),
          'content-type': 'application/json',
          'idempotency-key':
            String(pick(BAD_VALUES)(r))
              .slice(0, 400)
              .replace(/[^\x20-\x7e]/g, '') || 'k',
        },
      }),
      () => ({
        method: 'POST',
        path: '/v1/workspaces',
        body: garbageBody(),
        headers: { authorization: r() < 0.5 ? `Bearer ${OPERATOR_TOKEN}` : 'Bearer nope', 'content-type': 'application/json' },
      }),
      () => ({
        method: pick(['GET', 'PUT', 'DELETE']),
        path: '/v1/settings/email',
        body: garbageBody(),
        headers: { ...auth(), 'content-type': 'application/json' },
      }),
      () => ({
        method: 'POST',
        path: '/v1/settings/email/test',
        body: garbageBody(),
        headers: { ...auth(), 'content-type': 'application/json' },
      }),
      () => ({
        method: 'PUT',
        path: '/v1/settings/tracking',
        body: garbageBody(),
        headers: { ...auth(), 'content-type': 'application/json' },
      }),
      () => ({
        method: 'GET',
        path: `/v1/email-logs?${pick(['status', 'type', 'sendMethod', 'recipient', 'q', 'since', 'until', 'cursor', 'limit', 'referenceKind', 'referenceId', 'status[$ne]'])}=${q()}`,
        headers: auth(),
      }),
      () => ({ method: 'GET', path: `/v1/email-logs/${q()}`, headers: auth() }),
      () => ({ method: 'GET', path: `/v1/email-logs/${q()}/content`, headers: auth() }),
      () => ({ method: 'POST', path: `/v1/email-logs/${q()}/preview-link`, headers: auth() }),
      () => ({ method: 'GET', path: `/v1/email-logs/${q()}/preview?token=${q()}&images=${q()}` }),
      // Misspelt, bracketed and repeated parameters on every list route.
      () => ({
        method: 'GET',
        path: `${pick(['/v1/email-logs', '/v1/email-logs/export.csv', '/v1/email-logs/stats', '/v1/activity', '/v1/suppressions'])}?${pick(MISSPELT)}=${q()}`,
        headers: auth(),
      }),
      () => ({
        method: 'POST',
        path: `/v1/email-logs/${q()}/resend`,
        body: garbageBody(),
        headers: { ...auth(), 'content-type': 'application/json' },
      }),
      () => ({ method: 'GET', path: `/v1/email-logs/export.csv?cursor=${q()}&since=${q()}`, headers: auth() }),
      () => ({ method: 'GET', path: `/v1/email-logs/stats?since=${q()}&until=${q()}`, headers: auth() }),
      () => ({ method: 'GET', path: `/v1/activity?cursor=${q()}&limit=${q()}`, headers: auth() }),
      () => ({ method: pick(['GET', 'DELETE']), path: `/v1/suppressions/${q()}`, headers: auth() }),
      () => ({ method: 'GET', path: `/v1/suppressions?after=${q()}&limit=${q()}`, headers: auth() }),
      () => ({
        method: pick(['POST', 'PATCH', 'DELETE', 'GET']),
        path: pick(['/v1/webhook-endpoints', `/v1/webhook-endpoints/${q()}`, `/v1/webhook-endpoints/we_00000000000000000000000000`]),
        body: garbageBody(),
        headers: { ...auth(), 'content-type': 'application/json' },
      }),
      () => ({
        method: 'POST',
        path: `/v1/webhook-endpoints/${q()}/${pick(['rotate-secret', `deliveries/${q()}/replay`])}`,
        headers: auth(),
      }),
      () => ({ method: 'GET', path: `/v1/webhook-endpoints/${q()}/deliveries?limit=${q()}&cursor=${q()}`, headers: auth() }),
      () => ({ method: 'GET', path: `/metrics?${q()}`, headers: { authorization: `Bearer ${pick(['nope', ''])}` } }),
      () => ({
        method: 'POST',
        path: `/v1/webhooks/${pick(['mailroom', 'mailgun', 'sendgrid', 'postmark', 'ses', 'nope', '..%2f'])}`,
        body: garbageBody(),
        headers: {
          'content-type': pick(['application/json', 'text/plain', 'application/x-www-form-urlencoded']),
          'mailroom-signature': `t=${q()},v1=${q()}`,
        },
      }),
      () => ({ method: 'GET', path: `/t/o/${q()}.gif` }),
      () => ({ method: 'GET', path: `/t/c/${q()}` }),
      () => ({
        method: 'POST',
        path: '/v1/admin/retention/run',
        body: garbageBody(),
        headers: { authorization: `Bearer ${pick([OPERATOR_TOKEN, 'nope'])}`, 'content-type': 'application/json' },
      }),
      () => ({
        method: 'GET',
        path: `/admin/queues/api/queues?${q()}`,
        headers: { authorization: `Basic ${Buffer.from(`x:${pick(['nope', ''])}`).toString('base64')}` },
      }),
    ];

    const N = 10_000;
    const serverErrors: Array<{ c: Case; status: number; body: string }> = [];
    const unclear: Array<{ c: Case; status: number; body: string }> = [];
    const byStatus: Record<number, number> = {};
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < N) {
          next++;
          const c = pick(makers)();
          const res = await raw(c, port);
          byStatus[res.status] = (byStatus[res.status] ?? 0) + 1;
          if (res.status >= 500) serverErrors.push({ c, ...res });
          else if (res.status >= 400 && !c.path.startsWith('/admin/queues')) {
            let message: unknown;
            try {
              message = JSON.parse(res.body).error?.message;
            } catch {
              message = undefined;
            }
            if (typeof message !== 'string' || message.length === 0) unclear.push({ c, ...res });
          }
        }
      }),
    );
    const show = (xs: typeof serverErrors) =>
      xs.slice(0, 3).map((x) => `${x.c.method} ${x.c.path.slice(0, 120)} → ${x.status} ${x.body.slice(0, 200)}`);
    expect(show(serverErrors)).toEqual([]);
    expect(show(unclear)).toEqual([]);
    // Mostly refusals: the generator only makes malformed requests.
    const refused = Object.entries(byStatus).reduce((n, [s, k]) => n + (Number(s) >= 400 ? k : 0), 0);
    expect(refused).toBeGreaterThan(N * 0.8);

    // Nothing was written: no job queued, no entry, no settings, no extra workspace.
    const queue = new Queue('send-email', { connection: sys.redis, prefix: sys.config.queuePrefix });
    try {
      expect(await queue.count()).toBe(0);
    } finally {
      await queue.close();
    }
    expect(await countEntries(sys.mongo.db(sys.config.logsMongo.db))).toBe(0);
    expect(await sys.mongo.db(sys.config.mongo.db).collection('email_settings').countDocuments({})).toBe(0);
    expect(await sys.mongo.db(sys.config.mongo.db).collection('webhook_endpoints').countDocuments({})).toBe(0);
    expect(await sys.mongo.db(sys.config.mongo.db).collection('workspaces').countDocuments({})).toBe(1);
    // The server is still up.
    expect((await sys.request('GET', '/healthz')).status).toBe(200);
  }, 240_000);

  it('when a route gets a parameter its schema does not name, bracket syntax or a repeated single value, then it answers 400 naming it', async () => {
    const ws = await sys.createWorkspace('Strict');
    const checked: string[] = [];
    for (const route of API_ROUTES) {
      // Tracking links and Bull Board keep their query strings (see strict-query.ts).
      if (route.path.startsWith('/t/') || route.path.startsWith('/admin/queues')) continue;
      const path = route.path
        .replace('{id}', 'em_0000000000000000000000')
        .replace('{address}', 'a@example.com')
        .replace('{provider}', 'mailroom');
      const res = await sys.request(route.method.toUpperCase(), `${path}?stauts=bounced`, {
        key: ws.keys.admin,
        body: route.method === 'get' ? undefined : {},
      });
      expect({ route: `${route.method} ${route.path}`, status: res.status, body: res.body }).toEqual({
        route: `${route.method} ${route.path}`,
        status: 400,
        body: {
          error: {
            code: 'invalid_request',
            message: 'query.stauts: unknown parameter',
            fields: [{ path: 'query.stauts', message: 'unknown parameter' }],
          },
        },
      });
      checked.push(route.path);
    }
    expect(checked.length).toBeGreaterThan(20);

    const get = (qs: string) => sys.request('GET', `/v1/email-logs?${qs}`, { key: ws.keys.admin });
    const bracket = await get('recipient[$gt]=');
    expect(bracket.status).toBe(400);
    expect(bracket.body.error.fields).toEqual([
      { path: 'query.recipient[$gt]', message: 'bracket syntax is not accepted; pass plain values' },
    ]);
    const repeated = await get('recipient=a@example.com&recipient=b@example.com');
    expect(repeated.status).toBe(400);
    expect(repeated.body.error.fields).toEqual([{ path: 'query.recipient', message: 'given 2 times; one value is allowed' }]);
    const several = await get('stauts=bounced&limit=5&recipeint=x');
    expect(several.body.error.fields.map((f: { path: string }) => f.path)).toEqual(['query.stauts', 'query.recipeint']);
    // List filters keep both documented forms.
    expect((await get('status=bounced,sent')).status).toBe(200);
    expect((await get('status=bounced&status=sent&type=invoice&type=proposal')).status).toBe(200);
    expect((await sys.request('GET', '/v1/email-logs/stats?since=2026-01-01&until=2026-01-02', { key: ws.keys.admin })).status).toBe(200);
    // A query string with no parameter is no parameter.
    expect((await get('')).status).toBe(200);
  });
});
