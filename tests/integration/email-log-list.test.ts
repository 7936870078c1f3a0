import { newId } from '@mailroom/shared';
import { startTestSystem, type TestSystem } from '../support/system';
import { insertEntries, logEntry, walkPages } from './email-log-fixtures';

const MIN = 60_000;
const DAY = 86_400_000;

describe('email log list: filters and keyset pages', () => {
  let sys: TestSystem;
  let ws: { id: string; keys: { send: string; admin: string } };
  const base = Date.parse('2026-11-20T12:00:00.000Z');
  const at = (minutesAgo: number) => new Date(base - minutesAgo * MIN);

  beforeAll(async () => {
    sys = await startTestSystem({ env: { MANAGED_SMTP_URL: 'smtp://127.0.0.1:1' }, worker: false });
    ws = await sys.createWorkspace('List');
    await insertEntries(sys, [
      logEntry(ws.id, {
        _id: newId('em', base),
        sentAt: at(0),
        status: 'delivered',
        type: 'invoice',
        recipient: 'anna@acme.test',
        subject: 'Invoice INV-1',
      }),
      logEntry(ws.id, {
        sentAt: at(10),
        status: 'bounced',
        type: 'invoice',
        recipient: 'bob@beta.test',
        subject: 'Invoice INV-2',
        reference: { kind: 'invoice', id: 'inv_2' },
      }),
      logEntry(ws.id, {
        sentAt: at(20),
        status: 'opened',
        type: 'proposal',
        recipient: 'anna@acme.test',
        subject: 'Proposal (v1.2) ready',
        openedAt: at(5),
      }),
      logEntry(ws.id, {
        sentAt: at(30),
        status: 'send_failed',
        type: 'contract',
        recipient: 'carl@acme.test',
        subject: 'Contract',
        sendMethod: 'custom',
        error: 'connect ECONNREFUSED',
        errorCode: 'ECONNREFUSED',
        errorHint: 'Check host and port',
      }),
      logEntry(ws.id, {
        sentAt: at(40),
        status: 'sent',
        type: 'digest',
        recipient: 'dora@delta.test',
        subject: 'Weekly digest',
        sendMethod: 'test',
      }),
      logEntry(ws.id, {
        sentAt: new Date(base - 2 * DAY),
        status: 'complained',
        type: 'invoice',
        recipient: 'ANNA@acme.test',
        subject: 'Old invoice',
        reference: { kind: 'invoice', id: 'inv_9' },
      }),
    ]);
  });
  afterAll(async () => {
    await sys?.close();
  });

  const list = (query: string, key = ws.keys.admin) => sys.request('GET', `/v1/email-logs${query ? `?${query}` : ''}`, { key });
  const subjects = async (query: string) => {
    const r = await list(query);
    expect(r.status).toBe(200);
    return r.body.items.map((i: { subject: string }) => i.subject);
  };

  it('when the workspace has entries, then they come newest first with the page columns and no banner', async () => {
    const r = await list('');
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ nextCursor: null, customEmailConnected: false, banner: null });
    expect(r.body.items.map((i: { subject: string }) => i.subject)).toEqual([
      'Invoice INV-1',
      'Invoice INV-2',
      'Proposal (v1.2) ready',
      'Contract',
      'Weekly digest',
      'Old invoice',
    ]);
    const failed = r.body.items[3];
    expect(failed).toMatchObject({
      recipient: 'carl@acme.test',
      status: 'send_failed',
      statusLabel: 'Send failed',
      type: 'contract',
      from: 'Mailroom <notifications@mailroom.test>',
      error: 'connect ECONNREFUSED',
      errorCode: 'ECONNREFUSED',
      errorHint: 'Check host and port',
      sendMethod: 'custom',
      openedAt: null,
      sentAt: at(30).toISOString(),
      opens: 0,
      clicks: 0,
      reference: null,
      resendOf: null,
      resendCount: 0,
      lastResentAt: null,
      attempts: 1,
      createdAt: at(30).toISOString(),
    });
    expect(r.body.items[2].openedAt).toBe(at(5).toISOString());
  });

  it('when filtering by status, then one value, commas and repeated parameters all work', async () => {
    expect(await subjects('status=bounced')).toEqual(['Invoice INV-2']);
    expect(await subjects('status=bounced,complained')).toEqual(['Invoice INV-2', 'Old invoice']);
    expect(await subjects('status=bounced&status=send_failed')).toEqual(['Invoice INV-2', 'Contract']);
  });

  it('when filtering by type and send method, then only those entries come back', async () => {
    expect(await subjects('type=invoice')).toEqual(['Invoice INV-1', 'Invoice INV-2', 'Old invoice']);
    expect(await subjects('type=proposal,digest')).toEqual(['Proposal (v1.2) ready', 'Weekly digest']);
    expect(await subjects('sendMethod=custom')).toEqual(['Contract']);
    expect(await subjects('sendMethod=test')).toEqual(['Weekly digest']);
    expect(await subjects('type=invoice&status=delivered,complained')).toEqual(['Invoice INV-1', 'Old invoice']);
  });

  it('when filtering by recipient, then an address matches exactly and a trailing * matches a prefix', async () => {
    expect(await subjects('recipient=anna%40acme.test')).toEqual(['Invoice INV-1', 'Proposal (v1.2) ready']);
    expect(await subjects('recipient=b*')).toEqual(['Invoice INV-2']);
    expect(await subjects('recipient=.*')).toEqual([]);
  });

  it('when searching with q, then recipient or subject contains it, ignoring case, with regex characters taken literally', async () => {
    expect(await subjects('q=ANNA')).toEqual(['Invoice INV-1', 'Proposal (v1.2) ready', 'Old invoice']);
    expect(await subjects('q=digest')).toEqual(['Weekly digest']);
    expect(await subjects(`q=${encodeURIComponent('(v1.2)')}`)).toEqual(['Proposal (v1.2) ready']);
    expect(await subjects(`q=${encodeURIComponent('.*')}`)).toEqual([]);
  });

  it('when filtering by dates, then since/until bound sentAt (a day covers the whole UTC day)', async () => {
    expect(await subjects('since=2026-11-19')).toHaveLength(5);
    expect(await subjects('until=2026-11-18')).toEqual(['Old invoice']);
    expect(await subjects(`since=${encodeURIComponent(at(20).toISOString())}&until=${encodeURIComponent(at(10).toISOString())}`)).toEqual([
      'Invoice INV-2',
      'Proposal (v1.2) ready',
    ]);
  });

  it('when filtering by reference, then kind and id select the business record', async () => {
    expect(await subjects('referenceKind=invoice')).toEqual(['Invoice INV-2', 'Old invoice']);
    expect(await subjects('referenceKind=invoice&referenceId=inv_9')).toEqual(['Old invoice']);
  });

  it('when a filter value is wrong, then 400 names the field', async () => {
    const cases: Array<[string, string]> = [
      ['status=nope', 'query.status'],
      ['type=spam', 'query.type'],
      ['sendMethod=carrier-pigeon', 'query.sendMethod'],
      ['limit=0', 'query.limit'],
      ['limit=201', 'query.limit'],
      ['since=yesterday', 'query.since'],
      ['until=2026-13-01', 'query.until'],
      ['cursor=not-a-cursor', 'query.cursor'],
      [`cursor=${Buffer.from('{"v":1,"s":"x","i":"y"}').toString('base64url')}`, 'query.cursor'],
    ];
    for (const [query, field] of cases) {
      const r = await list(query);
      expect({ query, status: r.status }).toEqual({ query, status: 400 });
      expect(r.body.error.fields[0].path).toBe(field);
    }
  });

  it('when a custom email is connected, then the answer carries the SPF/DKIM banner', async () => {
    const put = await sys.request('PUT', '/v1/settings/email', {
      key: ws.keys.admin,
      body: { kind: 'smtp', host: 'smtp.acme.test', port: 587, from: 'Acme <billing@acme.test>' },
    });
    expect(put.status).toBe(200);
    const r = await list('limit=1');
    expect(r.body.customEmailConnected).toBe(true);
    expect(r.body.banner).toMatch(/your own provider/);
    expect(r.body.banner).toMatch(/SPF and DKIM/);
    await sys.request('DELETE', '/v1/settings/email', { key: ws.keys.admin });
  });

  it('when walking every page while new entries arrive, then each earlier entry appears exactly once, in order', async () => {
    const other = await sys.createWorkspace('Walk');
    const t0 = Date.now() - 3 * DAY;
    // Ties on sentAt are deliberate: the id breaks them.
    const existing = Array.from({ length: 230 }, (_, i) => logEntry(other.id, { sentAt: new Date(t0 + Math.floor(i / 3) * 1000) }));
    await insertEntries(sys, existing);
    let added = 0;
    const ids = await walkPages(sys, other.keys.admin, 'limit=17', async () => {
      await insertEntries(sys, [logEntry(other.id, { sentAt: new Date() }), logEntry(other.id, { sentAt: new Date(t0 + 500) })]);
      added += 2;
    });
    const expected = [...existing].sort((a, b) => b.sentAt.getTime() - a.sentAt.getTime() || (a._id < b._id ? 1 : -1)).map((d) => d._id);
    const known = new Set(expected);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.filter((id) => known.has(id))).toEqual(expected);
    expect(added).toBeGreaterThan(20);
  });

  it('when the key is a send key, then the list is forbidden', async () => {
    expect((await list('', ws.keys.send)).status).toBe(403);
    expect((await sys.request('GET', '/v1/email-logs')).status).toBe(401);
  });
});
