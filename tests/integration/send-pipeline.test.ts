import { startResettingServer, startSilentServer } from '../../infra/dev/misbehaving-servers';
import { startTokenEndpoint } from '../../infra/dev/oauth-token-endpoint';
import { startSmtpSink, type SmtpSink } from '../../infra/dev/smtp-sink';
import { startTestSystem, waitFor, type TestSystem } from '../support/system';
import { EMAIL_CONTENTS } from '@mailroom/shared';
import { findEntry } from '../support/log-entry';

const SIM = 'simulator.mailroom.test';

/** A port nothing listens on: bound once, then released. */
async function closedPort(): Promise<number> {
  const net = await import('node:net');
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

describe('send pipeline against real Redis, a real MongoDB-compatible server and real SMTP servers', () => {
  let sink: SmtpSink;
  let sys: TestSystem;
  let ws: { id: string; keys: { send: string; admin: string } };

  beforeAll(async () => {
    sink = await startSmtpSink({ slowMs: 200 });
    sys = await startTestSystem({ env: { MANAGED_SMTP_URL: sink.url, SEND_ATTEMPTS: '3' } });
    ws = await sys.createWorkspace('Pipeline');
  });
  afterAll(async () => {
    await sys?.close();
    await sink?.close();
  });

  const send = (body: Record<string, unknown>, headers: Record<string, string> = {}, key = ws.keys.send) =>
    sys.request('POST', '/v1/emails', { key, headers, body: { type: 'invoice', subject: 'Invoice INV-1', html: '<p>Hi</p>', ...body } });

  /** Reads the stored log document straight from the logs database. */
  const logDoc = (id: string) => findEntry(sys.mongo.db(sys.config.logsMongo.db), id);

  const finalDoc = (id: string, statuses = ['sent', 'send_failed']) =>
    waitFor(
      async () => {
        const d = await logDoc(id);
        return d && statuses.includes(d.status) ? d : null;
      },
      20_000,
      `entry ${id} in ${statuses.join('/')}`,
    );

  it('when a send is accepted, then the worker delivers it through the managed transport and logs one entry', async () => {
    const r = await send({ to: `delivered@${SIM}`, reference: { kind: 'invoice', id: 'inv_123' }, metadata: { plan: 'pro' } });
    expect(r.status).toBe(202);
    expect(r.body).toEqual({ id: expect.stringMatching(/^em_/), status: 'queued' });
    const d = await finalDoc(r.body.id);
    expect(d).toMatchObject({
      status: 'sent',
      sendMethod: 'managed',
      recipient: `delivered@${SIM}`,
      type: 'invoice',
      from: 'Mailroom <notifications@mailroom.test>',
      subject: 'Invoice INV-1',
      error: null,
      errorCode: null,
      errorHint: null,
      attempts: 1,
      reference: { kind: 'invoice', id: 'inv_123' },
      messageId: `<${r.body.id}@mailroom.test>`,
      opens: 0,
      clicks: 0,
    });
    expect(d.providerMessageId).toEqual(expect.any(String));
    expect(d.sentAt).toBeInstanceOf(Date);
    const received = sink.messages.filter((m) => m.mailroomId === r.body.id);
    expect(received).toHaveLength(1);
    expect(received[0]!.messageId).toBe(`<${r.body.id}@mailroom.test>`);
    expect(received[0]!.providerMessageId).toBe(d.providerMessageId);
    // Content for a resend is kept in the logs database too.
    const content = await sys.mongo.db(sys.config.logsMongo.db).collection<{ _id: string }>(EMAIL_CONTENTS).findOne({ _id: r.body.id });
    expect(content).toMatchObject({ to: `delivered@${SIM}`, subject: 'Invoice INV-1', html: '<p>Hi</p>' });
  });

  it('when the server rejects the recipient with 550, then the entry is send_failed at once with SMTP_550 and a hint', async () => {
    const r = await send({ to: `bounce@${SIM}` });
    const d = await finalDoc(r.body.id);
    expect(d).toMatchObject({ status: 'send_failed', errorCode: 'SMTP_550', attempts: 1, sendMethod: 'managed' });
    expect(d.error).toMatch(/550/);
    expect(d.errorHint).toEqual(expect.any(String));
    expect(d.errorHint.length).toBeGreaterThan(20);
  });

  it('when the server answers 451 once, then the retry delivers it and the entry shows two attempts', async () => {
    const to = `tempfail-once+${Date.now()}@${SIM}`;
    const r = await send({ to });
    const d = await finalDoc(r.body.id, ['sent']);
    expect(d).toMatchObject({ status: 'sent', attempts: 2, errorCode: null });
    expect(sink.countFor(r.body.id)).toBe(1);
    // The stored content follows its entry's latest attempt (retention removes them together),
    // written just after the entry: wait for it rather than race it.
    const contentSentAt = () =>
      sys.mongo
        .db(sys.config.logsMongo.db)
        .collection<{ _id: string; sentAt: Date }>(EMAIL_CONTENTS)
        .findOne({ _id: r.body.id })
        .then((c) => c?.sentAt.getTime());
    await waitFor(async () => (await contentSentAt()) === d.sentAt.getTime(), 5_000, 'content sentAt').catch(() => undefined);
    expect(await contentSentAt()).toBe(d.sentAt.getTime());
  });

  it('when 451 persists, then the entry shows the latest error while retrying and send_failed after the last attempt', async () => {
    const r = await send({ to: `tempfail@${SIM}` });
    const d = await finalDoc(r.body.id, ['send_failed']);
    expect(d).toMatchObject({ status: 'send_failed', errorCode: 'SMTP_451', attempts: 3 });
    expect(d.errorHint).toEqual(expect.any(String));
  });

  it('when the same Idempotency-Key comes with the same body, then the first id is returned and one email is sent; another body is a 409', async () => {
    const body = { to: `delivered@${SIM}`, subject: 'Idempotent' };
    const a = await send(body, { 'Idempotency-Key': 'order-42' });
    const b = await send(body, { 'Idempotency-Key': 'order-42' });
    expect(a.status).toBe(202);
    expect(b.status).toBe(202);
    expect(b.body.id).toBe(a.body.id);
    expect(b.headers.get('idempotent-replayed')).toBe('true');
    const c = await send({ ...body, subject: 'Other body' }, { 'Idempotency-Key': 'order-42' });
    expect(c.status).toBe(409);
    expect(c.body.error.code).toBe('idempotency_conflict');
    await finalDoc(a.body.id);
    await new Promise((r) => setTimeout(r, 300));
    expect(sink.countFor(a.body.id)).toBe(1);
    expect(sink.messages.filter((m) => m.subject === 'Idempotent')).toHaveLength(1);
  });

  it('when the body is invalid, then the answer is 400 naming the field and nothing is queued', async () => {
    const before = sink.messages.length;
    const bad = await send({ to: 'not-an-address' });
    expect(bad.status).toBe(400);
    expect(bad.body.error.fields[0].path).toBe('body.to');
    const injected = await send({ to: `delivered@${SIM}`, subject: 'Hi\r\nBcc: victim@example.com' });
    expect(injected.status).toBe(400);
    expect(injected.body.error.fields[0].path).toBe('body.subject');
    const reserved = await send({ to: `delivered@${SIM}`, headers: { 'Message-ID': '<x@y>' } });
    expect(reserved.status).toBe(400);
    expect(reserved.body.error.fields[0].path).toMatch(/^body\.headers/);
    const badType = await send({ to: `delivered@${SIM}`, type: 'spam' });
    expect(badType.status).toBe(400);
    expect(badType.body.error.fields[0].path).toBe('body.type');
    const noBody = await send({ to: `delivered@${SIM}`, html: undefined });
    expect(noBody.status).toBe(400);
    const json = await sys.request('POST', '/v1/emails', { key: ws.keys.send, body: '{"to": ' });
    expect(json.status).toBe(400);
    expect(json.body.error.code).toBe('invalid_json');
    await new Promise((r) => setTimeout(r, 200));
    expect(sink.messages.length).toBe(before);
  });

  it('when a key is missing or has the wrong role, then 401 or 403', async () => {
    expect((await sys.request('POST', '/v1/emails', { body: {} })).status).toBe(401);
    expect((await sys.request('POST', '/v1/emails', { key: 'mr_send_nope', body: {} })).status).toBe(401);
    expect((await sys.request('GET', '/v1/settings/email', { key: ws.keys.send })).status).toBe(403);
    expect((await sys.request('POST', '/v1/workspaces', { key: ws.keys.admin, body: { name: 'x' } })).status).toBe(401);
  });

  it('when headers and attachments are given, then they reach the SMTP server intact', async () => {
    const r = await send({
      to: `delivered@${SIM}`,
      cc: [`delivered+cc@${SIM}`],
      replyTo: 'billing@acme.test',
      headers: { 'X-Campaign': 'nov' },
      attachments: [{ filename: 'inv.txt', content: Buffer.from('invoice body').toString('base64'), contentType: 'text/plain' }],
    });
    expect(r.status).toBe(202);
    await finalDoc(r.body.id);
    const m = sink.messages.find((x) => x.mailroomId === r.body.id)!;
    expect(m.to.sort()).toEqual([`delivered+cc@${SIM}`, `delivered@${SIM}`].sort());
    expect(m.raw).toMatch(/X-Campaign: nov/);
    expect(m.raw).toMatch(/Reply-To: billing@acme.test/);
    expect(m.raw).toContain(Buffer.from('invoice body').toString('base64'));
  });
});

describe('custom transports: the errors a workspace admin meets', () => {
  let sys: TestSystem;
  let managedSink: SmtpSink;

  beforeAll(async () => {
    managedSink = await startSmtpSink();
  });
  afterAll(async () => {
    await managedSink?.close();
  });
  afterEach(async () => {
    await sys?.close();
  });

  async function workspaceWith(settings: Record<string, unknown>, env: Record<string, string> = {}) {
    sys = await startTestSystem({ env: { MANAGED_SMTP_URL: managedSink.url, SEND_ATTEMPTS: '2', ...env } });
    const ws = await sys.createWorkspace('Custom');
    const put = await sys.request('PUT', '/v1/settings/email', { key: ws.keys.admin, body: settings });
    expect(put.status).toBe(200);
    return ws;
  }

  async function sendAndWait(ws: { keys: { send: string } }, to = 'client@example.com') {
    const r = await sys.request('POST', '/v1/emails', {
      key: ws.keys.send,
      body: { to, type: 'proposal', subject: 'Proposal', text: 'Please review' },
    });
    expect(r.status).toBe(202);
    return waitFor(
      async () => {
        const d = await findEntry(sys.mongo.db(sys.config.logsMongo.db), r.body.id);
        return d && ['sent', 'send_failed'].includes(d.status) ? d : null;
      },
      20_000,
      'final entry',
    );
  }

  it('when the custom SMTP server accepts, then the entry is sent with sendMethod custom and the custom From', async () => {
    const own = await startSmtpSink({ auth: { user: 'me@acme.test', pass: 's3cret-pass' } });
    try {
      const ws = await workspaceWith({
        kind: 'smtp',
        host: '127.0.0.1',
        port: own.port,
        secure: false,
        user: 'me@acme.test',
        pass: 's3cret-pass',
        from: 'Acme <me@acme.test>',
      });
      const d = await sendAndWait(ws);
      expect(d).toMatchObject({ status: 'sent', sendMethod: 'custom', from: 'Acme <me@acme.test>', messageId: `<${d._id}@acme.test>` });
      expect(own.countFor(d._id)).toBe(1);
      expect(managedSink.countFor(d._id)).toBe(0);
      // Secrets never come back.
      const got = await sys.request('GET', '/v1/settings/email', { key: ws.keys.admin });
      expect(got.body).toMatchObject({ connected: true, settings: { kind: 'smtp', user: 'me@acme.test', hasPassword: true } });
      expect(JSON.stringify(got.body)).not.toContain('s3cret-pass');
      const stored = await sys.mongo.db(sys.config.mongo.db).collection('email_settings').findOne({});
      expect(JSON.stringify(stored)).not.toContain('s3cret-pass');
    } finally {
      await own.close();
    }
  });

  it('when the password is wrong, then send_failed at once with EAUTH and the seed hint', async () => {
    const own = await startSmtpSink({ auth: { user: 'me@acme.test', pass: 'right' } });
    try {
      const ws = await workspaceWith({
        kind: 'smtp',
        host: '127.0.0.1',
        port: own.port,
        secure: false,
        user: 'me@acme.test',
        pass: 'wrong',
        from: 'me@acme.test',
      });
      const d = await sendAndWait(ws);
      expect(d).toMatchObject({ status: 'send_failed', errorCode: 'EAUTH', attempts: 1, sendMethod: 'custom' });
      expect(d.errorHint).toMatch(/login details were rejected/i);
      expect(d.error).not.toContain('wrong');
    } finally {
      await own.close();
    }
  });

  it('when the port is closed, then ECONNREFUSED is retried and then send_failed with its hint', async () => {
    const ws = await workspaceWith({ kind: 'smtp', host: '127.0.0.1', port: await closedPort(), secure: false, from: 'me@acme.test' });
    const d = await sendAndWait(ws);
    expect(d).toMatchObject({ status: 'send_failed', errorCode: 'ECONNREFUSED', attempts: 2 });
    expect(d.errorHint).toMatch(/refused the connection/i);
  });

  it('when the host does not resolve, then send_failed at once with ENOTFOUND', async () => {
    const ws = await workspaceWith({ kind: 'smtp', host: 'smtp.mailroom-test.invalid', port: 587, secure: false, from: 'me@acme.test' });
    const d = await sendAndWait(ws);
    expect(d).toMatchObject({ status: 'send_failed', errorCode: 'ENOTFOUND', attempts: 1 });
    expect(d.errorHint).toMatch(/invalid domain|typos/i);
  });

  it('when the server accepts TCP and never greets, then ETIMEDOUT', async () => {
    const silent = await startSilentServer();
    try {
      const ws = await workspaceWith(
        { kind: 'smtp', host: '127.0.0.1', port: silent.port, secure: false, from: 'me@acme.test' },
        { SMTP_GREETING_TIMEOUT_MS: '300', SMTP_CONNECTION_TIMEOUT_MS: '300', SMTP_SOCKET_TIMEOUT_MS: '600' },
      );
      const d = await sendAndWait(ws);
      expect(d).toMatchObject({ status: 'send_failed', errorCode: 'ETIMEDOUT', attempts: 2 });
      expect(d.errorHint).toMatch(/too long to respond/i);
    } finally {
      await silent.close();
    }
  });

  it('when the server resets the connection, then ECONNRESET', async () => {
    const resetting = await startResettingServer();
    try {
      const ws = await workspaceWith({ kind: 'smtp', host: '127.0.0.1', port: resetting.port, secure: false, from: 'me@acme.test' });
      const d = await sendAndWait(ws);
      expect(d).toMatchObject({ status: 'send_failed', errorCode: 'ECONNRESET', attempts: 2 });
      expect(d.errorHint).toMatch(/interrupted/i);
    } finally {
      await resetting.close();
    }
  });

  it('when Google is connected through OAuth2, then XOAUTH2 is accepted by the server', async () => {
    const token = await startTokenEndpoint({ accessToken: 'ya29.test-access', expectRefreshToken: 'refresh-1', clientId: 'client-1' });
    const google = await startSmtpSink({ oauth2: { user: 'me@gmail.test', accessToken: 'ya29.test-access' } });
    try {
      const ws = await workspaceWith(
        {
          kind: 'google',
          user: 'me@gmail.test',
          clientId: 'client-1',
          clientSecret: 'cs-1',
          refreshToken: 'refresh-1',
          from: 'Me <me@gmail.test>',
        },
        { GOOGLE_SMTP_URL: `smtp://127.0.0.1:${google.port}`, GOOGLE_TOKEN_URL: token.url },
      );
      const d = await sendAndWait(ws);
      expect(d).toMatchObject({ status: 'sent', sendMethod: 'custom', from: 'Me <me@gmail.test>' });
      expect(google.messages.find((m) => m.mailroomId === d._id)?.user).toBe('me@gmail.test');
      expect(token.calls).toBeGreaterThanOrEqual(1);
      const got = await sys.request('GET', '/v1/settings/email', { key: ws.keys.admin });
      expect(JSON.stringify(got.body)).not.toMatch(/cs-1|refresh-1/);
    } finally {
      await google.close();
      await token.close();
    }
  });

  it('when a test send runs, then the API answers with the outcome and logs it with sendMethod test', async () => {
    const own = await startSmtpSink({ auth: { user: 'me@acme.test', pass: 'right' } });
    try {
      const ws = await workspaceWith({
        kind: 'smtp',
        host: '127.0.0.1',
        port: own.port,
        secure: false,
        user: 'me@acme.test',
        pass: 'right',
        from: 'me@acme.test',
      });
      const ok = await sys.request('POST', '/v1/settings/email/test', { key: ws.keys.admin, body: { to: 'me@acme.test' } });
      expect(ok.status).toBe(200);
      expect(ok.body).toMatchObject({ ok: true, status: 'sent', sendMethod: 'test', transport: 'custom' });
      const entry = await findEntry(sys.mongo.db(sys.config.logsMongo.db), ok.body.id);
      expect(entry).toMatchObject({ sendMethod: 'test', status: 'sent' });

      await sys.request('PUT', '/v1/settings/email', {
        key: ws.keys.admin,
        body: { kind: 'smtp', host: '127.0.0.1', port: own.port, secure: false, user: 'me@acme.test', pass: 'nope', from: 'me@acme.test' },
      });
      const bad = await sys.request('POST', '/v1/settings/email/test', { key: ws.keys.admin, body: { to: 'me@acme.test' } });
      expect(bad.status).toBe(200);
      expect(bad.body).toMatchObject({ ok: false, status: 'send_failed', errorCode: 'EAUTH' });
      expect(bad.body.errorHint).toMatch(/login details/i);

      // Disconnecting falls back to the managed transport on the next send.
      expect((await sys.request('DELETE', '/v1/settings/email', { key: ws.keys.admin })).status).toBe(204);
      const d = await sendAndWait(ws);
      expect(d).toMatchObject({ status: 'sent', sendMethod: 'managed' });
    } finally {
      await own.close();
    }
  });
});
