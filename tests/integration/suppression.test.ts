import { startSmtpSink, type SmtpSink } from '../../infra/dev/smtp-sink';
import { signMailroomWebhook } from '../../apps/api/src/webhooks/mailroom';
import { startTestSystem, waitFor, type TestSystem } from '../support/system';
import { findEntry } from '../support/log-entry';

const SIM = 'simulator.mailroom.test';
const SECRET = 'whsec-suppression-0123456789';

describe('suppression end to end', () => {
  let sink: SmtpSink;
  let sys: TestSystem;
  let ws: { id: string; keys: { send: string; admin: string } };

  beforeAll(async () => {
    sink = await startSmtpSink();
    sys = await startTestSystem({ env: { MANAGED_SMTP_URL: sink.url, WEBHOOK_SECRET: SECRET, EVENTS_BATCH_WAIT_MS: '5' } });
    ws = await sys.createWorkspace('Suppression');
  });
  afterAll(async () => {
    await sys?.close();
    await sink?.close();
  });

  const entry = (id: string) => findEntry(sys.mongo.db(sys.config.logsMongo.db), id);
  const send = async (to: string, statuses = ['sent', 'send_failed']) => {
    const r = await sys.request('POST', '/v1/emails', { key: ws.keys.send, body: { to, type: 'invoice', subject: 'Invoice', text: 'Hi' } });
    return waitFor(async () => {
      const d = await entry(r.body.id);
      return d && statuses.includes(d.status) ? d : null;
    });
  };
  const event = (body: unknown) => {
    const raw = JSON.stringify(body);
    return sys.request('POST', '/v1/webhooks/mailroom', { body: raw, headers: { 'mailroom-signature': signMailroomWebhook(SECRET, raw) } });
  };

  it('when an email hard-bounces, then the next send is send_failed/ESUPPRESSED; after the admin removes it, the send goes out', async () => {
    const to = `Delivered+hb@${SIM}`;
    const first = await send(to);
    expect(first.status).toBe('sent');
    expect(
      (
        await event({
          id: 'hb-1',
          type: 'bounced',
          bounceType: 'hard',
          detail: '550 5.1.1 user unknown',
          timestamp: new Date().toISOString(),
          emailId: first._id,
        })
      ).status,
    ).toBe(200);
    // Generous: in CI this file runs beside the fault tests, which load both cores.
    const bounced = await waitFor(
      async () => ((await entry(first._id))?.status === 'bounced' ? entry(first._id) : null),
      30_000,
      'bounced entry',
    );
    expect(bounced).toMatchObject({
      status: 'bounced',
      bounceType: 'hard',
      bounceDetail: '550 5.1.1 user unknown',
      errorCode: 'BOUNCED',
      error: '550 5.1.1 user unknown',
    });

    const list = await waitFor(async () => {
      const r = await sys.request('GET', '/v1/suppressions', { key: ws.keys.admin });
      return r.body.items?.length ? r : null;
    });
    expect(list.body.items[0]).toMatchObject({
      address: to.toLowerCase(),
      reason: 'hard_bounce',
      emailId: first._id,
      detail: '550 5.1.1 user unknown',
    });
    expect((await sys.request('GET', '/v1/suppressions', { key: ws.keys.send })).status).toBe(403);

    const blocked = await send(to);
    expect(blocked).toMatchObject({ status: 'send_failed', errorCode: 'ESUPPRESSED', attempts: 1 });
    expect(blocked.errorHint).toMatch(/suppression list/);
    expect(blocked.error).toMatch(/hard bounce/);
    expect(sink.countFor(blocked._id)).toBe(0);

    expect((await sys.request('DELETE', `/v1/suppressions/${encodeURIComponent(to)}`, { key: ws.keys.admin })).status).toBe(204);
    expect((await sys.request('DELETE', `/v1/suppressions/${encodeURIComponent(to)}`, { key: ws.keys.admin })).status).toBe(404);
    const activity = await sys.mongo.db(sys.config.logsMongo.db).collection('activity_log').findOne({ action: 'suppression.removed' });
    expect(activity).toMatchObject({ workspaceId: ws.id, target: to.toLowerCase() });

    const again = await send(to);
    expect(again.status).toBe('sent');
    expect(sink.countFor(again._id)).toBe(1);
  });

  it('when a complaint arrives, then the address is suppressed; a soft bounce does not suppress', async () => {
    const a = await send(`delivered+c@${SIM}`);
    const b = await send(`delivered+s@${SIM}`);
    await event([
      { id: 'c-1', type: 'complained', timestamp: new Date().toISOString(), emailId: a._id },
      { id: 's-1', type: 'bounced', bounceType: 'soft', timestamp: new Date().toISOString(), emailId: b._id },
    ]);
    await waitFor(
      async () => (await entry(a._id))?.status === 'complained' && (await entry(b._id))?.status === 'bounced',
      30_000,
      'complained and bounced entries',
    );
    const r = await waitFor(async () => {
      const l = await sys.request('GET', '/v1/suppressions?limit=1', { key: ws.keys.admin });
      return l.body.items?.length ? l : null;
    });
    expect(r.body.items).toEqual([expect.objectContaining({ address: `delivered+c@${SIM}`, reason: 'complaint' })]);
    expect(r.body.next).toBeNull();
  });
});
