import { startTestSystem, type TestSystem } from '../support/system';
import { contentFor, insertEntries, logEntry, walkPages } from './email-log-fixtures';

describe('tenancy: a workspace sees only its own email log and activity', () => {
  let sys: TestSystem;
  let a: { id: string; keys: { send: string; admin: string } };
  let b: { id: string; keys: { send: string; admin: string } };
  const day = new Date().toISOString().slice(0, 10);
  const bIds: string[] = [];

  beforeAll(async () => {
    sys = await startTestSystem({ env: { MANAGED_SMTP_URL: 'smtp://127.0.0.1:1' }, worker: false });
    a = await sys.createWorkspace('A');
    b = await sys.createWorkspace('B');
    const mine = Array.from({ length: 5 }, (_, i) => logEntry(a.id, { subject: `A-${i}`, recipient: 'shared@example.com' }));
    const theirs = Array.from({ length: 7 }, (_, i) =>
      logEntry(b.id, { subject: `B-${i}`, recipient: 'shared@example.com', status: 'bounced' }),
    );
    bIds.push(...theirs.map((d) => d._id));
    // Resend needs stored content; B's entries have it, so only tenancy can stop A.
    await insertEntries(sys, [...mine, ...theirs], theirs.map(contentFor));
  });
  afterAll(async () => {
    await sys?.close();
  });

  it("when A asks for B's entries by id, then detail and resend answer 404 and nothing is queued", async () => {
    for (const id of bIds.slice(0, 3)) {
      expect((await sys.request('GET', `/v1/email-logs/${id}`, { key: a.keys.admin })).status).toBe(404);
      expect((await sys.request('POST', `/v1/email-logs/${id}/resend`, { key: a.keys.admin })).status).toBe(404);
    }
    expect(await sys.redis.keys(`{${sys.namespace}}:send-email:em_*`)).toEqual([]);
    // B itself can read them.
    expect((await sys.request('GET', `/v1/email-logs/${bIds[0]}`, { key: b.keys.admin })).status).toBe(200);
  });

  it("when A lists, searches, exports or counts, then B's entries never show", async () => {
    const all = await walkPages(sys, a.keys.admin, 'limit=2');
    expect(all).toHaveLength(5);
    expect(all.some((id) => bIds.includes(id))).toBe(false);
    for (const q of ['status=bounced', 'recipient=shared%40example.com', 'q=B-', 'referenceKind=invoice']) {
      const r = await sys.request('GET', `/v1/email-logs?${q}`, { key: a.keys.admin });
      expect(r.body.items.filter((i: { id: string }) => bIds.includes(i.id))).toEqual([]);
    }
    const csv = await sys.request('GET', '/v1/email-logs/export.csv', { key: a.keys.admin });
    expect(String(csv.body).split('\r\n').filter(Boolean)).toHaveLength(6);
    for (const id of bIds) expect(String(csv.body)).not.toContain(id);
    const stats = await sys.request('GET', `/v1/email-logs/stats?since=${day}&until=${day}`, { key: a.keys.admin });
    expect(stats.body.totals.total).toBe(5);
    expect(stats.body.totals.byStatus.bounced).toBeUndefined();
  });

  it("when A reads the activity log, then only A's actions are there", async () => {
    const r = await sys.request('GET', '/v1/activity', { key: a.keys.admin });
    expect(r.status).toBe(200);
    expect(r.body.items.length).toBeGreaterThan(0);
    expect(r.body.items.every((i: { target: string | null }) => i.target !== b.id)).toBe(true);
    expect(r.body.items.map((i: { action: string }) => i.action)).toContain('workspace.created');
  });

  it('when a send key calls an admin route, then 403', async () => {
    const routes: Array<[string, string]> = [
      ['GET', '/v1/email-logs'],
      ['GET', `/v1/email-logs/${bIds[0]}`],
      ['POST', `/v1/email-logs/${bIds[0]}/resend`],
      ['GET', '/v1/email-logs/export.csv'],
      ['GET', '/v1/email-logs/stats'],
      ['GET', '/v1/activity'],
    ];
    for (const [method, path] of routes) {
      const r = await sys.request(method, path, { key: b.keys.send });
      expect({ path, status: r.status }).toEqual({ path, status: 403 });
    }
  });
});
