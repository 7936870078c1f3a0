import { OPERATOR_TOKEN, startTestSystem, type TestSystem } from '../support/system';

const basic = (user: string, pass: string) => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;

describe('operators and API consumers: Bull Board, OpenAPI, rate limits', () => {
  let sys: TestSystem;
  let ws: { id: string; keys: { send: string; admin: string } };

  beforeAll(async () => {
    sys = await startTestSystem({
      env: { MANAGED_SMTP_URL: 'smtp://127.0.0.1:1', RATE_LIMIT_ADMIN_PER_MINUTE: '3', RATE_LIMIT_SEND_PER_MINUTE: '1000' },
      worker: false,
    });
    ws = await sys.createWorkspace('Ops');
  });
  afterAll(async () => {
    await sys?.close();
  });

  it('when Bull Board is opened without the operator token, then 401 with a Basic challenge and no queue data', async () => {
    const attempts: Array<Record<string, string>> = [
      {},
      { authorization: basic('ops', 'wrong') },
      { authorization: `Bearer ${ws.keys.admin}` },
    ];
    for (const headers of attempts) {
      for (const path of ['/admin/queues', '/admin/queues/api/queues']) {
        const r = await sys.request('GET', path, { headers });
        expect(r.status).toBe(401);
        expect(r.headers.get('www-authenticate')).toMatch(/^Basic realm="Mailroom operators"/);
        expect(JSON.stringify(r.body)).not.toMatch(/send-email|retention/);
      }
    }
  });

  it('when the operator signs in with basic auth or a bearer token, then the board and its queues answer', async () => {
    const page = await sys.request('GET', '/admin/queues', { headers: { authorization: basic('anyone', OPERATOR_TOKEN) } });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    const api = await sys.request('GET', '/admin/queues/api/queues', { headers: { authorization: `Bearer ${OPERATOR_TOKEN}` } });
    expect(api.status).toBe(200);
    const names = api.body.queues.map((q: { name: string }) => q.name);
    expect(names).toEqual(expect.arrayContaining(['send-email', 'retention']));
  });

  it('when /openapi.json is fetched, then it is OpenAPI 3.1 with every route and schemas from the validators', async () => {
    const r = await sys.request('GET', '/openapi.json');
    expect(r.status).toBe(200);
    expect(r.body.openapi).toBe('3.1.0');
    const paths = Object.keys(r.body.paths);
    for (const p of [
      '/healthz',
      '/readyz',
      '/v1/workspaces',
      '/v1/emails',
      '/v1/settings/email',
      '/v1/settings/email/test',
      '/v1/admin/retention/run',
      '/v1/email-logs',
      '/v1/email-logs/export.csv',
      '/v1/email-logs/stats',
      '/v1/email-logs/{id}',
      '/v1/email-logs/{id}/resend',
      '/v1/activity',
      '/admin/queues',
    ]) {
      expect(paths).toContain(p);
    }
    const send = r.body.paths['/v1/emails'].post;
    const body = send.requestBody.content['application/json'].schema;
    expect(body.required).toEqual(expect.arrayContaining(['to', 'type', 'subject']));
    expect(body.properties.type.enum).toContain('invoice');
    expect(r.body.paths['/v1/settings/email'].put.requestBody.content['application/json'].schema.oneOf).toHaveLength(2);
    const list = r.body.paths['/v1/email-logs'].get;
    const status = list.parameters.find((p: { name: string }) => p.name === 'status');
    expect(status).toMatchObject({ in: 'query', required: false, schema: { type: 'array' } });
    expect(list.parameters.find((p: { name: string }) => p.name === 'limit').schema).toMatchObject({ maximum: 200, default: 50 });
    expect(r.body.paths['/v1/email-logs/{id}'].get.parameters[0]).toMatchObject({ name: 'id', in: 'path', required: true });
    expect(list.security).toEqual([{ adminKey: [] }]);
    expect(Object.keys(r.body.components.securitySchemes)).toEqual(expect.arrayContaining(['adminKey', 'sendKey', 'operatorToken']));
  });

  it('when a key goes over its per-minute limit, then 429 with Retry-After and RateLimit headers, per key', async () => {
    // Stay inside one fixed window.
    const intoWindow = Date.now() % 60_000;
    if (intoWindow > 50_000) await new Promise((r) => setTimeout(r, 60_000 - intoWindow + 100));
    const other = await sys.createWorkspace('Other');
    const statuses: number[] = [];
    let last: Awaited<ReturnType<TestSystem['request']>> | undefined;
    for (let i = 0; i < 5; i++) {
      last = await sys.request('GET', '/v1/email-logs?limit=1', { key: ws.keys.admin });
      statuses.push(last.status);
    }
    expect(statuses).toEqual([200, 200, 200, 429, 429]);
    expect(last!.body.error.code).toBe('rate_limited');
    const retryAfter = Number(last!.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(last!.headers.get('ratelimit-limit')).toBe('3');
    expect(last!.headers.get('ratelimit-remaining')).toBe('0');
    // Another key, and the same workspace's send key, have counters of their own.
    const fresh = await sys.request('GET', '/v1/email-logs?limit=1', { key: other.keys.admin });
    expect(fresh.status).toBe(200);
    expect(fresh.headers.get('ratelimit-remaining')).toBe('2');
    const send = await sys.request('POST', '/v1/emails', { key: ws.keys.send, body: {} });
    expect(send.status).toBe(400);
    // The counters live under the queue prefix (one Redis Cluster hash slot).
    expect((await sys.redis.keys(`{${sys.namespace}}:mr:rate:*`)).length).toBeGreaterThanOrEqual(2);
  });
});
