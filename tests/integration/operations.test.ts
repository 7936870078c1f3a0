import { startSmtpSink, type SmtpSink } from '../../infra/dev/smtp-sink';
import { OPERATOR_TOKEN, startTestSystem, type TestSystem } from '../support/system';

describe('operations: health, readiness, workspaces', () => {
  let sink: SmtpSink;
  let sys: TestSystem;

  beforeAll(async () => {
    sink = await startSmtpSink();
    sys = await startTestSystem({ env: { MANAGED_SMTP_URL: sink.url }, worker: false });
  });
  afterAll(async () => {
    await sys?.close();
    await sink?.close();
  });

  it('when everything is up, then /healthz and /readyz answer 200', async () => {
    expect(await sys.request('GET', '/healthz')).toMatchObject({ status: 200, body: { status: 'ok' } });
    expect(await sys.request('GET', '/readyz')).toMatchObject({
      status: 200,
      body: { status: 'ready', checks: { redis: true, mainDb: true, logsDb: true } },
    });
  });

  it('when a workspace is created, then both keys are shown once and stored only as hashes in the main DB', async () => {
    const r = await sys.request('POST', '/v1/workspaces', { key: OPERATOR_TOKEN, body: { name: 'Acme Ltd' } });
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({
      id: expect.stringMatching(/^ws_/),
      name: 'Acme Ltd',
      keys: { send: expect.stringMatching(/^mr_send_/), admin: expect.stringMatching(/^mr_admin_/) },
    });
    const keys = await sys.mongo.db(sys.config.mongo.db).collection('api_keys').find({ workspaceId: r.body.id }).toArray();
    expect(keys).toHaveLength(2);
    expect(JSON.stringify(keys)).not.toContain(r.body.keys.send);
    expect(JSON.stringify(keys)).not.toContain(r.body.keys.admin);
    // Nothing of the workspace lives in the logs database.
    const logsCollections = await sys.mongo.db(sys.config.logsMongo.db).listCollections().toArray();
    expect(logsCollections.map((c) => c.name)).not.toContain('workspaces');
  });

  it('when the operator token is missing or wrong, or the name is bad, then 401 / 400', async () => {
    expect((await sys.request('POST', '/v1/workspaces', { body: { name: 'x' } })).status).toBe(401);
    expect((await sys.request('POST', '/v1/workspaces', { key: 'wrong-token-wrong-token', body: { name: 'x' } })).status).toBe(401);
    const bad = await sys.request('POST', '/v1/workspaces', { key: OPERATOR_TOKEN, body: { name: '' } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.fields[0].path).toBe('body.name');
  });

  it('when settings are invalid, then 400 names the field', async () => {
    const ws = await sys.createWorkspace();
    const r = await sys.request('PUT', '/v1/settings/email', {
      key: ws.keys.admin,
      body: { kind: 'smtp', host: 'smtp.acme.test', port: 70000, from: 'me@acme.test' },
    });
    expect(r.status).toBe(400);
    expect(r.body.error.fields[0].path).toBe('body.port');
    const none = await sys.request('GET', '/v1/settings/email', { key: ws.keys.admin });
    expect(none.body).toEqual({ connected: false, settings: null });
  });

  it('when an unknown route is called, then 404 in JSON', async () => {
    const r = await sys.request('GET', '/v1/nope');
    expect(r.status).toBe(404);
    expect(r.body.error.code).toBe('not_found');
  });
});
