import {
  createEmailProducer,
  EMAIL_CONTENTS,
  createRedis,
  createSendEmailQueue,
  EMAIL_ID_PATTERN,
  ProducerValidationError,
  type EmailProducer,
  type RedisClient,
  type SendEmailInput,
  type SendEmailQueue,
} from '@mailroom/shared';
import { startSmtpSink, type SmtpSink } from '../../infra/dev/smtp-sink';
import { startTestSystem, waitFor, type TestSystem } from '../support/system';
import { countEntries, findEntries, findEntry } from '../support/log-entry';

const SIM = 'simulator.mailroom.test';
const MAX_ATTACHMENTS = 1024;

/** A base64 attachment of exactly `bytes` decoded bytes. */
const attachment = (bytes: number) => ({ filename: 'a.bin', content: Buffer.alloc(bytes, 7).toString('base64') });

describe('email producer: in-process sends through the API queue, against real Redis, database and SMTP', () => {
  let sink: SmtpSink;
  let sys: TestSystem;
  let connection: RedisClient;
  let queue: SendEmailQueue;
  let producer: EmailProducer;
  let ws: { id: string };

  beforeAll(async () => {
    sink = await startSmtpSink();
    sys = await startTestSystem({ env: { MANAGED_SMTP_URL: sink.url, MAX_ATTACHMENTS_BYTES: String(MAX_ATTACHMENTS) } });
    ws = await sys.createWorkspace('Producer');
    // Built the way the API builds its send queue, from the same config.
    connection = createRedis(sys.config.redisUrl, 'client');
    queue = createSendEmailQueue(connection, sys.config.queuePrefix, sys.config.send.attempts, sys.config.send.backoffMs);
    // Small chunks, so a batch of 50 takes several addBulk calls.
    producer = createEmailProducer(queue, { maxAttachmentsBytes: sys.config.send.maxAttachmentsBytes, chunkSize: 20 });
  });
  afterAll(async () => {
    await queue?.close();
    connection?.disconnect();
    await sys?.close();
    await sink?.close();
  });

  const logsDb = () => sys.mongo.db(sys.config.logsMongo.db);
  const sentEntry = async (id: string) => {
    const d = await findEntry(logsDb(), id);
    return d?.status === 'sent' ? d : null;
  };

  /** Every job the queue has seen in this namespace, in any state. */
  const jobsSeen = async () => {
    const c = await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'completed', 'failed');
    return Object.values(c).reduce((a, b) => a + b, 0);
  };

  const invoice = (i: number, extra: Partial<SendEmailInput> = {}): SendEmailInput => ({
    to: `delivered+${i}@${SIM}`,
    type: 'invoice',
    subject: `Producer invoice ${i}`,
    html: `<p>Invoice ${i}</p>`,
    reference: { kind: 'invoice', id: `inv_${i}` },
    ...extra,
  });

  /** Fails the test with the error's class and fields when `fn` does not throw a validation error. */
  const validationError = async (fn: () => Promise<unknown>): Promise<ProducerValidationError> => {
    const err = await fn().then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ProducerValidationError);
    return err as ProducerValidationError;
  };

  it('when 50 emails are sent in one batch, then each is delivered exactly once and logged as sent, ids in request order', async () => {
    const requests = Array.from({ length: 50 }, (_, i) => invoice(i, { metadata: { batch: 'b1', i } }));
    const ids = await producer.sendMany(ws.id, requests);
    expect(ids).toHaveLength(50);
    expect(new Set(ids).size).toBe(50);
    for (const id of ids) expect(id).toMatch(EMAIL_ID_PATTERN);

    await waitFor(async () => (await countEntries(logsDb(), { workspaceId: ws.id, status: 'sent' })) >= 50, 30_000, '50 sent entries');
    // Let a stray duplicate delivery show up before counting.
    await new Promise((r) => setTimeout(r, 300));
    const docs = await findEntries(logsDb(), { workspaceId: ws.id });
    expect(docs).toHaveLength(50);
    const byId = new Map(docs.map((d) => [d._id, d]));
    ids.forEach((id, i) => {
      expect(byId.get(id)).toMatchObject({
        status: 'sent',
        recipient: `delivered+${i}@${SIM}`,
        type: 'invoice',
        subject: `Producer invoice ${i}`,
        reference: { kind: 'invoice', id: `inv_${i}` },
        metadata: { batch: 'b1', i },
        attempts: 1,
      });
      expect(sink.countFor(id)).toBe(1);
      expect(sink.messages.find((m) => m.mailroomId === id)!.subject).toBe(`Producer invoice ${i}`);
    });
    // The job carries the queue's default options, as the API's jobs do.
    const job = await queue.getJob(ids[0]!);
    expect(job?.opts.attempts).toBe(sys.config.send.attempts);
  });

  it('when one email is sent, then it is queued under its id and delivered', async () => {
    const r = await producer.send(ws.id, invoice(100, { text: 'plain too', cc: `copy@${SIM}` }));
    expect(r).toEqual({ id: expect.stringMatching(EMAIL_ID_PATTERN), status: 'queued' });
    const d = await waitFor(() => sentEntry(r.id), 20_000, `entry ${r.id}`);
    expect(d.recipient).toBe(`delivered+100@${SIM}`);
    // Parsed by the API's schema: a single cc becomes a list, as it does for the API.
    // The content is written beside the entry, in the same batch: wait for it rather than race it.
    const content = await waitFor(
      () => logsDb().collection<{ _id: string }>(EMAIL_CONTENTS).findOne({ _id: r.id }),
      5_000,
      'content',
    ).catch(() => null);
    expect(content).toMatchObject({ cc: [`copy@${SIM}`], text: 'plain too', html: '<p>Invoice 100</p>' });
    expect(sink.countFor(r.id)).toBe(1);
  });

  it('when a request in the middle of a batch is bad, then the error names requests[i].<field> and nothing is queued', async () => {
    const before = await jobsSeen();
    const sinkBefore = sink.messages.length;
    const requests = Array.from({ length: 10 }, (_, i) => invoice(200 + i));
    requests[4] = invoice(204, { to: 'not-an-address' });
    requests[7] = invoice(207, { subject: 'Hi\r\nBcc: victim@example.com', headers: { 'Message-ID': '<x@y>' } });
    const err = await validationError(() => producer.sendMany(ws.id, requests));
    const paths = err.fields.map((f) => f.path);
    expect(paths).toEqual(expect.arrayContaining(['requests[4].to', 'requests[7].subject']));
    expect(paths.some((p) => p.startsWith('requests[7].headers'))).toBe(true);
    expect(paths.every((p) => /^requests\[(4|7)\]\./.test(p))).toBe(true);
    expect(err.message).toMatch(/^requests\[4\]\.to: /);

    const missing = await validationError(() =>
      producer.sendMany(ws.id, [invoice(300), { to: `a@${SIM}`, type: 'invoice', subject: 'x' }]),
    );
    expect(missing.fields).toEqual([{ path: 'requests[1].html', message: 'html or text is required' }]);
    const unknownKey = await validationError(() => producer.send(ws.id, { ...invoice(301), from: 'x@y.z' } as SendEmailInput));
    expect(unknownKey.fields[0]!.path).toMatch(/^request/);
    const badWorkspace = await validationError(() => producer.send('', invoice(302)));
    expect(badWorkspace.fields[0]!.path).toBe('workspaceId');

    await new Promise((r) => setTimeout(r, 300));
    expect(await jobsSeen()).toBe(before);
    expect(sink.messages.length).toBe(sinkBefore);
    expect(await countEntries(logsDb(), { 'reference.id': { $in: ['inv_200', 'inv_209', 'inv_300'] } })).toBe(0);
  });

  it('when attachments exceed the limit, then the producer throws as the API answers 413; at the limit both accept', async () => {
    const before = await jobsSeen();
    const over = invoice(400, { attachments: [attachment(MAX_ATTACHMENTS - 100), attachment(101)] });
    const err = await validationError(() => producer.sendMany(ws.id, [invoice(401), over]));
    expect(err.fields).toEqual([{ path: 'requests[1].attachments', message: expect.stringContaining(`at most ${MAX_ATTACHMENTS} bytes`) }]);
    const single = await validationError(() => producer.send(ws.id, over));
    expect(single.fields[0]!.path).toBe('request.attachments');
    expect(await jobsSeen()).toBe(before);

    // The API draws the line at the same byte.
    const keys = (await sys.createWorkspace('Producer API')).keys;
    const api = await sys.request('POST', '/v1/emails', { key: keys.send, body: over });
    expect(api.status).toBe(413);

    const atLimit = invoice(402, { attachments: [attachment(MAX_ATTACHMENTS)] });
    const [id] = await producer.sendMany(ws.id, [atLimit]);
    await waitFor(() => sentEntry(id!), 20_000, `entry ${id}`);
    expect(sink.countFor(id!)).toBe(1);
  });
});
