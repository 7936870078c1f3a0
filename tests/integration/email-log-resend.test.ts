import { createCachedSuppressionRepository, createSuppressionRepository } from '@mailroom/shared';
import { startSmtpSink, type SmtpSink } from '../../infra/dev/smtp-sink';
import { startTestSystem, waitFor, type TestSystem } from '../support/system';
import { contentFor, insertEntries, logEntry, logsCollection } from './email-log-fixtures';

const SIM = 'simulator.mailroom.test';

describe('email log detail and resend against a real worker and real SMTP servers', () => {
  let managed: SmtpSink;
  let own: SmtpSink;
  let sys: TestSystem;
  let ws: { id: string; keys: { send: string; admin: string } };

  beforeAll(async () => {
    managed = await startSmtpSink();
    own = await startSmtpSink({ auth: { user: 'me@acme.test', pass: 'right-pass' } });
    sys = await startTestSystem({ env: { MANAGED_SMTP_URL: managed.url, SEND_ATTEMPTS: '1' } });
    ws = await sys.createWorkspace('Resend');
  });
  afterAll(async () => {
    await sys?.close();
    await managed?.close();
    await own?.close();
  });

  const final = (id: string) =>
    waitFor(
      async () => {
        const d = await logsCollection(sys).findOne({ _id: id });
        return d && ['sent', 'send_failed'].includes(d.status) ? d : null;
      },
      20_000,
      `final entry ${id}`,
    );
  const detail = (id: string, key = ws.keys.admin) => sys.request('GET', `/v1/email-logs/${id}`, { key });
  const resend = (id: string, key = ws.keys.admin) => sys.request('POST', `/v1/email-logs/${id}/resend`, { key });
  const custom = (pass: string) =>
    sys.request('PUT', '/v1/settings/email', {
      key: ws.keys.admin,
      body: { kind: 'smtp', host: '127.0.0.1', port: own.port, secure: false, user: 'me@acme.test', pass, from: 'Acme <me@acme.test>' },
    });

  it('when a failed email is resent after the settings are fixed, then a new entry goes through the fixed transport and both link to each other', async () => {
    expect((await custom('wrong-pass')).status).toBe(200);
    const sent = await sys.request('POST', '/v1/emails', {
      key: ws.keys.send,
      body: {
        to: 'client@example.com',
        type: 'invoice',
        subject: 'Invoice INV-7',
        html: '<p>Due</p>',
        reference: { kind: 'invoice', id: 'inv_7' },
      },
    });
    const failed = await final(sent.body.id);
    expect(failed).toMatchObject({ status: 'send_failed', errorCode: 'EAUTH', sendMethod: 'custom' });

    expect((await custom('right-pass')).status).toBe(200);
    const r = await resend(failed._id);
    expect(r.status).toBe(202);
    expect(r.body).toEqual({ id: expect.stringMatching(/^em_/), resendOf: failed._id });
    // Shown at once as queued, then replaced by the worker's outcome.
    const redone = await final(r.body.id);
    expect(redone).toMatchObject({
      status: 'sent',
      sendMethod: 'custom',
      from: 'Acme <me@acme.test>',
      recipient: 'client@example.com',
      resendOf: failed._id,
    });
    expect(own.countFor(r.body.id)).toBe(1);
    expect(own.messages.find((m) => m.mailroomId === r.body.id)?.subject).toBe('Invoice INV-7');

    const original = (await detail(failed._id)).body;
    expect(original).toMatchObject({
      id: failed._id,
      status: 'send_failed',
      resendCount: 1,
      resends: [r.body.id],
      links: { original: null, resends: [r.body.id] },
    });
    expect(original.lastResentAt).toEqual(expect.any(String));
    expect(original.timeline.map((e: { type: string }) => e.type)).toEqual(['queued', 'send_failed']);
    expect(original.timeline[1].detail).toEqual(expect.any(String));
    const copy = (await detail(r.body.id)).body;
    expect(copy).toMatchObject({
      resendOf: failed._id,
      links: { original: failed._id, resends: [] },
      reference: { kind: 'invoice', id: 'inv_7' },
    });
    expect(copy.timeline.map((e: { type: string }) => e.type)).toEqual(['queued', 'sent']);

    const activity = await sys.request('GET', '/v1/activity?limit=5', { key: ws.keys.admin });
    expect(activity.status).toBe(200);
    expect(activity.body.items[0]).toMatchObject({
      action: 'email.resent',
      target: failed._id,
      actorKeyId: expect.stringMatching(/^key_/),
    });
    expect(activity.body.items[0].details).toMatchObject({ resendId: r.body.id });
    await sys.request('DELETE', '/v1/settings/email', { key: ws.keys.admin });
  });

  it('when a sent email is resent, then the recipient gets the same content again as a new entry', async () => {
    const sent = await sys.request('POST', '/v1/emails', {
      key: ws.keys.send,
      body: { to: `delivered@${SIM}`, type: 'proposal', subject: 'Proposal P-3', text: 'Please review' },
    });
    const first = await final(sent.body.id);
    expect(first.status).toBe('sent');
    const r1 = await resend(first._id);
    const r2 = await resend(first._id);
    expect([r1.status, r2.status]).toEqual([202, 202]);
    const [a, b] = [await final(r1.body.id), await final(r2.body.id)];
    expect([a.status, b.status]).toEqual(['sent', 'sent']);
    expect(managed.messages.filter((m) => m.subject === 'Proposal P-3')).toHaveLength(3);
    const original = (await detail(first._id)).body;
    expect(original).toMatchObject({ resendCount: 2, links: { original: null, resends: [r1.body.id, r2.body.id] } });
    // The newest entry is the page's first row.
    const page = await sys.request('GET', '/v1/email-logs?limit=1', { key: ws.keys.admin });
    expect(page.body.items[0].id).toBe(r2.body.id);
  });

  it('when the entry is past retention or its content is gone, then resend answers 404', async () => {
    const old = logEntry(ws.id, { sentAt: new Date(Date.now() - 200 * 86_400_000) });
    const noContent = logEntry(ws.id, {});
    await insertEntries(sys, [old, noContent], [contentFor(old)]);
    expect((await resend(old._id)).status).toBe(404);
    expect((await resend(noContent._id)).status).toBe(404);
    expect((await resend('em_NOTANID')).status).toBe(404);
    expect((await detail('em_NOTANID')).status).toBe(404);
    expect((await logsCollection(sys).findOne({ _id: old._id }))?.resendCount).toBe(0);
  });

  it('when the recipient is suppressed, then resend answers 409 with the reason and sends nothing', async () => {
    const sent = await sys.request('POST', '/v1/emails', {
      key: ws.keys.send,
      body: { to: `delivered+sup@${SIM}`, type: 'invoice', subject: 'Suppressed', text: 'x' },
    });
    const first = await final(sent.body.id);
    // Through the cache wrapper, as the events worker adds them (it bumps the cache version).
    await createCachedSuppressionRepository(
      createSuppressionRepository(sys.mongo.db(sys.config.mongo.db)),
      sys.redis,
      sys.config.queuePrefix,
    ).add({
      workspaceId: ws.id,
      address: `Delivered+sup@${SIM}`,
      reason: 'hard_bounce',
      emailId: first._id,
      detail: '550 5.1.1 user unknown',
    });
    const r = await resend(first._id);
    expect(r.status).toBe(409);
    expect(r.body.error.code).toBe('recipient_suppressed');
    expect(r.body.error.message).toMatch(/hard_bounce/);
    expect(r.body.error.message).toMatch(/550 5\.1\.1/);
    expect((await detail(first._id)).body.resendCount).toBe(0);
  });

  it('when a send key tries the detail, resend or activity, then 403', async () => {
    const e = logEntry(ws.id, {});
    await insertEntries(sys, [e]);
    expect((await detail(e._id, ws.keys.send)).status).toBe(403);
    expect((await resend(e._id, ws.keys.send)).status).toBe(403);
    expect((await sys.request('GET', '/v1/activity', { key: ws.keys.send })).status).toBe(403);
  });
});
