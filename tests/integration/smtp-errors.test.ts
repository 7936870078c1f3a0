/**
 * Error normalisation against real SMTP servers (infra/dev/smtp-sink.ts) and real nodemailer 10,
 * plus table checks for packages/shared/src/smtp-errors.ts.
 */
import { createTransport } from 'nodemailer';
import {
  ERROR_HINTS,
  ERROR_PERMANENCE,
  GENERIC_HINT,
  normalizeSendError,
  type NormalizedSendError,
  type SendMethod,
} from '../../packages/shared/src/smtp-errors';
import { findClosedPort, startResettingServer, startSilentServer } from '../../infra/dev/misbehaving-servers';
import { startTokenEndpoint, type TokenEndpoint } from '../../infra/dev/oauth-token-endpoint';
import { startSmtpSink, type SmtpSink } from '../../infra/dev/smtp-sink';

const SIM = 'simulator.mailroom.test';
const USER = 'mailer@example.com';
const PASS = 'correct-horse-battery';
const TIMEOUTS = { connectionTimeout: 1000, greetingTimeout: 800, socketTimeout: 1500 };

type Outcome = { info?: { response: string; accepted: unknown[]; rejected: unknown[] }; error?: unknown };

/** Sends one message with a fresh non-pooled transport; never throws. */
async function send(options: Record<string, unknown>, to: string, headers: Record<string, string> = {}): Promise<Outcome> {
  const transport = createTransport({ ...TIMEOUTS, ...options } as Parameters<typeof createTransport>[0] & { host: string });
  try {
    const info = await transport.sendMail({ from: USER, to, subject: 'Invoice INV-7', text: 'Hello', headers });
    return { info: info as Outcome['info'] };
  } catch (error) {
    return { error };
  } finally {
    transport.close();
  }
}

/** Asserts that the send failed and normalizes to the expected code / permanence with a hint. */
function expectFailure(outcome: Outcome, errorCode: string, permanent: boolean, method: SendMethod = 'custom'): NormalizedSendError {
  expect(outcome.info).toBeUndefined();
  // Node core errors come from another realm under jest, so no `instanceof Error` here
  expect(Object.prototype.toString.call(outcome.error)).toBe('[object Error]');
  const normalized = normalizeSendError(outcome.error, method);
  expect({ errorCode: normalized.errorCode, permanent: normalized.permanent }).toEqual({ errorCode, permanent });
  expect(normalized.errorHint.trim().length).toBeGreaterThan(20);
  expect(normalized.message.length).toBeGreaterThan(0);
  return normalized;
}

function raw(outcome: Outcome): Record<string, unknown> {
  return outcome.error as Record<string, unknown>;
}

describe('smtp errors against real servers', () => {
  let sink: SmtpSink;
  let auth: { host: string; port: number; auth: { user: string; pass: string } };

  beforeAll(async () => {
    sink = await startSmtpSink({ auth: { user: USER, pass: PASS }, slowMs: 300 });
    auth = { host: sink.host, port: sink.port, auth: { user: USER, pass: PASS } };
  });
  afterAll(async () => {
    await sink.close();
  });

  it('when the recipient is delivered@, then the sink accepts it and the provider id is in info.response', async () => {
    const before = sink.messages.length;
    const outcome = await send(auth, `delivered+inv@${SIM}`, { 'X-Mailroom-Id': 'em_delivered_1' });
    expect(outcome.error).toBeUndefined();
    const [message] = (await sink.waitForMessages(before + 1, 2000)).slice(before);
    expect(outcome.info!.response).toBe(`250 2.0.0 Ok: queued as ${message!.providerMessageId}`);
    expect(message).toMatchObject({
      from: USER,
      to: [`delivered+inv@${SIM}`],
      mailroomId: 'em_delivered_1',
      subject: 'Invoice INV-7',
      user: USER,
    });
    expect(message!.messageId).toMatch(/^<.+@.+>$/);
    expect(sink.countFor('em_delivered_1')).toBe(1);
  });

  it('when the connection url is used, then it carries the credentials and delivers', async () => {
    expect(sink.url).toBe(`smtp://${encodeURIComponent(USER)}:${PASS}@127.0.0.1:${sink.port}`);
    const transport = createTransport(sink.url);
    try {
      const info = await transport.sendMail({ from: USER, to: `delivered@${SIM}`, subject: 's', text: 't' });
      expect(info.response).toMatch(/^250 2\.0\.0 Ok: queued as [0-9A-F]{16}$/);
    } finally {
      transport.close();
    }
  });

  it('when the recipient is bounce@, then it is SMTP_550 and permanent', async () => {
    const outcome = await send(auth, `bounce@${SIM}`);
    expect(raw(outcome)).toMatchObject({ code: 'EENVELOPE', responseCode: 550, command: 'RCPT TO' });
    const normalized = expectFailure(outcome, 'SMTP_550', true);
    expect(normalized).toMatchObject({ responseCode: 550, command: 'RCPT TO' });
    expect(normalized.message).toContain('550 5.1.1 The email account that you tried to reach does not exist');
  });

  it('when the recipient is tempfail@, then it is SMTP_451 and transient', async () => {
    const outcome = await send(auth, `tempfail@${SIM}`);
    expect(raw(outcome)).toMatchObject({ code: 'EENVELOPE', responseCode: 451, command: 'RCPT TO' });
    expect(expectFailure(outcome, 'SMTP_451', false).message).toContain('451 4.3.0 Temporary local problem, try again later');
    expectFailure(await send(auth, `tempfail@${SIM}`), 'SMTP_451', false);
  });

  it('when the recipient is tempfail-once@, then the first try is SMTP_451 and the second is delivered', async () => {
    const to = `tempfail-once+${Date.now()}@${SIM}`;
    expectFailure(await send(auth, to), 'SMTP_451', false);
    const second = await send(auth, to);
    expect(second.error).toBeUndefined();
    expect(second.info!.accepted).toEqual([to]);
  });

  it('when the recipient is mailboxfull@ or blocked@, then it is SMTP_552 / SMTP_554 and permanent', async () => {
    expect(expectFailure(await send(auth, `mailboxfull@${SIM}`), 'SMTP_552', true).message).toContain('552 5.2.2 Mailbox full');
    expect(expectFailure(await send(auth, `blocked@${SIM}`), 'SMTP_554', true).message).toContain('554 5.7.1 Message rejected as spam');
  });

  it('when the recipient is slow@, then the DATA reply comes after slowMs and the message is delivered', async () => {
    const started = Date.now();
    const outcome = await send(auth, `slow@${SIM}`);
    expect(outcome.error).toBeUndefined();
    expect(Date.now() - started).toBeGreaterThanOrEqual(280);
  });

  it('when only some recipients bounce, then the send succeeds with the bounced ones in info.rejected', async () => {
    const outcome = await send(auth, `bounce@${SIM}, delivered@${SIM}`);
    expect(outcome.error).toBeUndefined();
    expect(outcome.info!.rejected).toEqual([`bounce@${SIM}`]);
  });

  it('when the password is wrong, then it is EAUTH, permanent, and the message holds no password', async () => {
    const outcome = await send({ ...auth, auth: { user: USER, pass: 'wrong-secret-pass' } }, `delivered@${SIM}`);
    expect(raw(outcome)).toMatchObject({ code: 'EAUTH', responseCode: 535, command: 'AUTH PLAIN' });
    const normalized = expectFailure(outcome, 'EAUTH', true);
    expect(normalized.message).toContain('535 5.7.8');
    expect(normalized.message).not.toContain('wrong-secret-pass');
    expect(normalizeSendError(outcome.error, 'test').errorHint).toBe(ERROR_HINTS['test:EAUTH']);
  });

  it('when no login is given to a server that requires one, then it is SMTP_530 and permanent', async () => {
    const outcome = await send({ host: sink.host, port: sink.port }, `delivered@${SIM}`);
    expect(raw(outcome)).toMatchObject({ code: 'EENVELOPE', responseCode: 530, command: 'MAIL FROM' });
    expectFailure(outcome, 'SMTP_530', true);
  });

  it('when nothing listens on the port, then it is ECONNREFUSED and transient', async () => {
    const outcome = await send({ host: '127.0.0.1', port: await findClosedPort() }, `delivered@${SIM}`);
    expect(raw(outcome)).toMatchObject({ code: 'ESOCKET', originalCode: 'ECONNREFUSED', command: 'CONN' });
    expect(expectFailure(outcome, 'ECONNREFUSED', false).errorHint).toBe(ERROR_HINTS.ECONNREFUSED);
    const managed = expectFailure(outcome, 'ECONNREFUSED', false, 'managed');
    expect(managed.errorHint).toBe(ERROR_HINTS['managed:ECONNREFUSED']);
  });

  it('when the host does not exist, then it is ENOTFOUND and permanent', async () => {
    const outcome = await send({ host: 'smtp.mailroom-test.invalid', port: 2525 }, `delivered@${SIM}`);
    expect(raw(outcome)).toMatchObject({ code: 'EDNS', originalCode: 'ENOTFOUND', command: 'CONN' });
    expect(expectFailure(outcome, 'ENOTFOUND', true).message).toContain('smtp.mailroom-test.invalid');
  });

  it('when the server never sends a greeting, then it is ETIMEDOUT and transient', async () => {
    const silent = await startSilentServer();
    try {
      const outcome = await send({ host: '127.0.0.1', port: silent.port }, `delivered@${SIM}`);
      expect(raw(outcome)).toMatchObject({ code: 'ETIMEDOUT', command: 'CONN', timeoutType: 'GREETING_TIMEOUT' });
      expectFailure(outcome, 'ETIMEDOUT', false);
    } finally {
      await silent.close();
    }
  });

  it('when the server resets the connection, then it is ECONNRESET and transient', async () => {
    const resetting = await startResettingServer();
    try {
      const outcome = await send({ host: '127.0.0.1', port: resetting.port }, `delivered@${SIM}`);
      expect(raw(outcome)).toMatchObject({ code: 'ESOCKET', originalCode: 'ECONNRESET', command: 'CONN' });
      expectFailure(outcome, 'ECONNRESET', false);
    } finally {
      await resetting.close();
    }
  });

  it('when SSL is switched on against a plain port, then it is ESOCKET and transient', async () => {
    const outcome = await send({ ...auth, secure: true }, `delivered@${SIM}`);
    expect(raw(outcome)).toMatchObject({ code: 'ESOCKET', command: 'CONN' });
    expect(expectFailure(outcome, 'ESOCKET', false).errorHint).toBe(ERROR_HINTS.ESOCKET);
  });

  it('when the message is over the size limit, then it is SMTP_552 from DATA and permanent', async () => {
    const small = await startSmtpSink({ maxMessageBytes: 200 });
    try {
      const outcome = await send({ host: small.host, port: small.port }, `delivered@${SIM}`);
      expect(raw(outcome)).toMatchObject({ code: 'EMESSAGE', responseCode: 552, command: 'DATA' });
      expectFailure(outcome, 'SMTP_552', true);
      expect(small.messages).toHaveLength(0);
    } finally {
      await small.close();
    }
  });

  it('when waiting for more messages than arrive, then waitForMessages rejects after its timeout', async () => {
    await expect(sink.waitForMessages(sink.messages.length + 1, 100)).rejects.toThrow(/waited 100 ms/);
  });
});

describe('XOAUTH2 against a real token endpoint', () => {
  const oauthUser = 'owner@workspace.example';
  let sink: SmtpSink;
  let tokens: TokenEndpoint;
  const oauth = (refreshToken: string, accessUrl: string) => ({
    host: sink.host,
    port: sink.port,
    auth: { type: 'OAuth2', user: oauthUser, clientId: 'client-1', clientSecret: 'client-secret-1', refreshToken, accessUrl },
  });

  beforeAll(async () => {
    sink = await startSmtpSink({ oauth2: { user: oauthUser, accessToken: 'access-token-1' } });
    tokens = await startTokenEndpoint({ accessToken: 'access-token-1', expectRefreshToken: 'refresh-1', clientId: 'client-1' });
  });
  afterAll(async () => {
    await Promise.all([sink.close(), tokens.close()]);
  });

  it('when the refresh token is valid, then the token is fetched and the message is accepted', async () => {
    const calls = tokens.calls;
    const outcome = await send(oauth('refresh-1', tokens.url), `delivered@${SIM}`);
    expect(outcome.error).toBeUndefined();
    expect(tokens.calls).toBe(calls + 1);
    expect(sink.messages.at(-1)).toMatchObject({ user: oauthUser, to: [`delivered@${SIM}`] });
  });

  it('when the refresh token is wrong, then nodemailer gives EAUTH/EOAUTH2 and it is EOAUTH2, permanent', async () => {
    const count = sink.messages.length;
    const outcome = await send(oauth('refresh-wrong', tokens.url), `delivered@${SIM}`);
    expect(raw(outcome)).toMatchObject({ code: 'EAUTH', originalCode: 'EOAUTH2', command: 'AUTH XOAUTH2', message: 'invalid_grant' });
    expect(raw(outcome).responseCode).toBeUndefined();
    expect(expectFailure(outcome, 'EOAUTH2', true).message).not.toContain('client-secret-1');
    expect(sink.messages).toHaveLength(count);
  });

  it('when the token endpoint is down, then nodemailer gives EAUTH/EFETCH and it is EFETCH, transient', async () => {
    const outcome = await send(oauth('refresh-1', `http://127.0.0.1:${await findClosedPort()}/token`), `delivered@${SIM}`);
    expect(raw(outcome)).toMatchObject({ code: 'EAUTH', originalCode: 'EFETCH', command: 'AUTH XOAUTH2' });
    expectFailure(outcome, 'EFETCH', false);
  });

  it('when the access token is refused by the server, then it is EAUTH with 535 and permanent', async () => {
    const outcome = await send(
      { host: sink.host, port: sink.port, auth: { type: 'OAuth2', user: oauthUser, accessToken: 'stale' } },
      `delivered@${SIM}`,
    );
    expect(raw(outcome)).toMatchObject({ code: 'EAUTH', responseCode: 535, command: 'AUTH XOAUTH2' });
    expectFailure(outcome, 'EAUTH', true);
  });
});

describe('normalizeSendError tables', () => {
  const nodemailerError = (fields: Record<string, unknown>, message = 'boom') => Object.assign(new Error(message), fields);

  it('when any hint is looked up, then it is a non-empty sentence', () => {
    expect(GENERIC_HINT.length).toBeGreaterThan(20);
    for (const [key, hint] of Object.entries(ERROR_HINTS)) {
      expect([key, hint.trim().length > 20 && /[.!)]$/.test(hint.trim())]).toEqual([key, true]);
    }
  });

  it('when a code has a permanence entry, then it also has a plain hint', () => {
    for (const code of Object.keys(ERROR_PERMANENCE)) expect([code, code in ERROR_HINTS]).toEqual([code, true]);
  });

  it('when a seed code is normalized, then the hint uses the help-center wording', () => {
    expect(ERROR_HINTS.ENOTFOUND).toBe("The recipient's email address has an invalid domain. Double-check the email address for typos.");
    expect(ERROR_HINTS.ECONNREFUSED).toBe(
      'Your email server refused the connection. Check that your SMTP host and port are correct in your email settings.',
    );
    expect(ERROR_HINTS.ETIMEDOUT).toBe(
      'Your email server took too long to respond. Usually temporary, so try resending. If it keeps happening, check your SMTP settings.',
    );
    expect(ERROR_HINTS.ECONNRESET).toBe('The connection to your email server was interrupted. Usually temporary, so try resending.');
    expect(ERROR_HINTS.EAUTH).toBe(
      'Your email login details were rejected. Go to Settings > Email > Sending email and update your username or password.',
    );
    expect(ERROR_HINTS.ESOCKET).toBe(
      'Could not connect to your email server. Check that your SMTP host, port, and SSL settings are correct.',
    );
  });

  it.each([
    ['EAUTH', true],
    ['ENOAUTH', true],
    ['EOAUTH2', true],
    ['ETLS', true],
    ['ECONFIG', true],
    ['EPROTOCOL', true],
    ['EMESSAGE', true],
    ['EMAXRECIPIENTS', true],
    ['EENVELOPE', true],
    ['ETIMEDOUT', false],
    ['ECONNECTION', false],
    ['ESOCKET', false],
    ['EMAXLIMIT', false],
    ['EABORT', false],
    ['ESTREAM', false],
    ['EPROXY', false],
    ['EDNS', false],
    ['EOTP', true],
  ])('when nodemailer reports %s without a reply, then permanent is %s', (code, permanent) => {
    const normalized = normalizeSendError(nodemailerError({ code }), 'custom');
    expect(normalized).toMatchObject({ errorCode: code, permanent, errorHint: ERROR_HINTS[code] });
  });

  it.each([
    ['ESOCKET', 'ECONNREFUSED', 'ECONNREFUSED', false],
    ['ESOCKET', 'ECONNRESET', 'ECONNRESET', false],
    ['ESOCKET', 'ETIMEDOUT', 'ETIMEDOUT', false],
    ['ESOCKET', 'EHOSTUNREACH', 'EHOSTUNREACH', false],
    ['ESOCKET', 'ENETUNREACH', 'ENETUNREACH', false],
    ['ESOCKET', 'EPIPE', 'EPIPE', false],
    ['ESOCKET', 'ERR_SSL_WRONG_VERSION_NUMBER', 'ESOCKET', false],
    ['EDNS', 'ENOTFOUND', 'ENOTFOUND', true],
    ['EDNS', 'EAI_AGAIN', 'EAI_AGAIN', false],
    ['EDNS', 'ESERVFAIL', 'EAI_AGAIN', false],
    ['EDNS', 'EWEIRD', 'EDNS', false],
    ['EAUTH', 'EOAUTH2', 'EOAUTH2', true],
    ['EAUTH', 'EFETCH', 'EFETCH', false],
  ])('when code %s carries originalCode %s, then it is %s (permanent %s)', (code, originalCode, errorCode, permanent) => {
    expect(normalizeSendError(nodemailerError({ code, originalCode, command: 'CONN' }), 'custom')).toMatchObject({
      errorCode,
      permanent,
      command: 'CONN',
    });
  });

  it('when a Node error arrives unwrapped, then its own code is used', () => {
    const err = Object.assign(new Error('connect ECONNREFUSED 10.0.0.1:587'), { code: 'ECONNREFUSED', errno: -111 });
    expect(normalizeSendError(err, 'custom')).toMatchObject({ errorCode: 'ECONNREFUSED', permanent: false });
  });

  it('when EAUTH comes with a 535 reply, then EAUTH wins over SMTP_535', () => {
    const err = nodemailerError({ code: 'EAUTH', responseCode: 535, response: '535 5.7.8 nope', command: 'AUTH LOGIN' }, 'Invalid login');
    expect(normalizeSendError(err, 'custom')).toMatchObject({
      errorCode: 'EAUTH',
      permanent: true,
      responseCode: 535,
      command: 'AUTH LOGIN',
      message: 'Invalid login: 535 5.7.8 nope',
    });
  });

  it('when the server replied 421 on a dropped connection, then it is SMTP_421 and transient', () => {
    const err = nodemailerError({ code: 'ECONNECTION', responseCode: 421, response: '421 4.4.2 closing', command: 'CONN' });
    expect(normalizeSendError(err, 'custom')).toMatchObject({ errorCode: 'SMTP_421', permanent: false, errorHint: ERROR_HINTS.SMTP_421 });
    expect(normalizeSendError(err, 'managed').errorHint).toBe(ERROR_HINTS['managed:SMTP_421']);
  });

  it('when an SMTP reply code has no own hint, then the 4xx / 5xx class hint and permanence apply', () => {
    expect(normalizeSendError(nodemailerError({ code: 'EENVELOPE', responseCode: 557 }), 'custom')).toMatchObject({
      errorCode: 'SMTP_557',
      permanent: true,
      errorHint: ERROR_HINTS.SMTP_5XX,
    });
    expect(normalizeSendError(nodemailerError({ code: 'EMESSAGE', responseCode: 471 }), 'custom')).toMatchObject({
      errorCode: 'SMTP_471',
      permanent: false,
      errorHint: ERROR_HINTS.SMTP_4XX,
    });
    expect(normalizeSendError(nodemailerError({ code: 'EENVELOPE', responseCode: 503 }), 'custom')).toMatchObject({
      errorCode: 'SMTP_503',
      permanent: true,
    });
  });

  it('when a 2xx/3xx code comes with a protocol error, then the nodemailer code is kept', () => {
    expect(normalizeSendError(nodemailerError({ code: 'EPROTOCOL', responseCode: 220 }), 'custom')).toMatchObject({
      errorCode: 'EPROTOCOL',
      permanent: true,
    });
  });

  it('when the method has a variant, then it is used before the plain key, and other methods get the plain key', () => {
    const refused = nodemailerError({ code: 'ESOCKET', originalCode: 'ECONNREFUSED' });
    expect(normalizeSendError(refused, 'managed').errorHint).toBe(ERROR_HINTS['managed:ECONNREFUSED']);
    expect(ERROR_HINTS['managed:ECONNREFUSED']).toMatch(/retries automatically/);
    expect(normalizeSendError(refused, 'custom').errorHint).toBe(ERROR_HINTS.ECONNREFUSED);
    expect(normalizeSendError(refused, 'test').errorHint).toBe(ERROR_HINTS.ECONNREFUSED);
    expect(normalizeSendError(nodemailerError({ code: 'EAUTH' }), 'managed').errorHint).toBe(ERROR_HINTS['managed:EAUTH']);
  });

  it('when the code is not in the table, then it is kept with the generic hint and is transient', () => {
    expect(normalizeSendError(nodemailerError({ code: 'ESOMETHINGNEW' }), 'custom')).toEqual({
      errorCode: 'ESOMETHINGNEW',
      errorHint: GENERIC_HINT,
      permanent: false,
      message: 'boom',
    });
  });

  it.each([
    ['an Error without code', new Error('kaput'), 'kaput'],
    ['a string', 'plain failure', 'plain failure'],
    ['null', null, 'null'],
    ['undefined', undefined, 'undefined'],
    ['an object with a lower-case code', { code: 'weird', message: 'x' }, 'x'],
  ])('when the error is %s, then it is EUNKNOWN with the generic hint and transient', (_label, err, message) => {
    expect(normalizeSendError(err, 'custom')).toEqual({ errorCode: 'EUNKNOWN', errorHint: GENERIC_HINT, permanent: false, message });
  });

  it('when the message contains credentials, then they are stripped', () => {
    const err = nodemailerError(
      { code: 'ECONFIG' },
      'bad url smtp://me%40x.com:hunter2@smtp.x.com:587 sent AUTH PLAIN AG1lAGh1bnRlcjI= with password=hunter2 and Bearer ya29.tok, refresh_token: "rt-123"',
    );
    const { message } = normalizeSendError(err, 'custom');
    expect(message).not.toMatch(/hunter2|AG1lAGh1bnRlcjI=|ya29|rt-123/);
    expect(message).toContain('smtp://***@smtp.x.com:587');
  });

  it('when the error message is huge, then it is truncated', () => {
    expect(normalizeSendError(new Error('x'.repeat(10_000)), 'custom').message.length).toBeLessThanOrEqual(2001);
  });
});
