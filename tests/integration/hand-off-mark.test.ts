/**
 * Where the hand-off mark is set: after the envelope is accepted and the body written, right
 * before the final dot of DATA (apps/worker/src/transports/final-dot-gate.ts). Each case runs
 * the real worker against a real SMTP server (smtp-server, scripted per case) and a Redis of its
 * own, whose writes the SMTP server pauses (CLIENT PAUSE … WRITE) to hold the mark back.
 */
import net from 'node:net';
import { SMTPServer, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';
import { createRedis, ownKey, type RedisClient } from '@mailroom/shared';
import { startRedis, type RunningRedis } from '../../infra/dev/redis';
import { signMailroomWebhook } from '../../apps/api/src/webhooks/mailroom';
import { startTestSystem, waitFor, type TestSystem } from '../support/system';
import { findEntry } from '../support/log-entry';

const WEBHOOK_SECRET = 'whsec-test-0123456789abcdef';

interface Transaction {
  session: string;
  mailroomId?: string;
  /** When the first chunk of the body arrived, and whether the hand-off mark existed then. */
  bodyAt?: number;
  markAtBody?: string | null;
  /** When the final dot arrived, and the mark then. */
  dotAt?: number;
  markAtDot?: string | null;
  /** The message as received (headers and body, without the final dot). */
  raw?: Buffer;
}

type DataStep = (ctx: {
  stream: SMTPServerDataStream;
  socket: net.Socket | undefined;
  tx: Transaction;
  n: number;
}) => 'accept' | 'cut' | Error;

/**
 * An SMTP server that records, for every transaction, when the body and the final dot arrived
 * and whether the hand-off mark was in Redis at each moment. `pauseWritesMs` pauses Redis writes
 * when RCPT TO arrives, so the worker's mark waits; `onBody` decides what happens at the first
 * chunk of the body ('cut': reset the connection) and `onDot` what is answered to the final dot.
 */
async function startRecordingServer(opts: {
  redis: RedisClient;
  markKey: (mailroomId: string) => string;
  pauseWritesMs?: number;
  onBody?: DataStep;
  onDot?: DataStep;
}) {
  const transactions: Transaction[] = [];
  /** When the last pause of Redis writes was asked for (it starts no earlier). */
  let pausedAt = 0;
  const sockets = new Map<number, net.Socket>();
  let n = 0;
  const server = new SMTPServer({
    disabledCommands: ['STARTTLS'],
    authOptional: true,
    logger: false,
    closeTimeout: 500,
    onRcptTo(_address, _session, callback) {
      if (!opts.pauseWritesMs) return callback();
      pausedAt = Date.now();
      opts.redis.call('CLIENT', 'PAUSE', String(opts.pauseWritesMs), 'WRITE').then(() => callback(), callback);
    },
    onData(stream: SMTPServerDataStream, session: SMTPServerSession, callback) {
      const tx: Transaction = { session: session.id };
      const i = n++;
      transactions.push(tx);
      const socket = sockets.get(session.remotePort);
      const chunks: Buffer[] = [];
      let cut = false;
      stream.on('data', (chunk: Buffer) => {
        chunks.push(chunk);
        if (tx.bodyAt !== undefined) return;
        tx.bodyAt = Date.now();
        tx.mailroomId = /X-Mailroom-Id: (\S+)/i.exec(Buffer.concat(chunks).toString())?.[1];
        if (tx.mailroomId) void opts.redis.get(opts.markKey(tx.mailroomId)).then((m) => (tx.markAtBody = m));
        if (opts.onBody?.({ stream, socket, tx, n: i }) === 'cut') {
          cut = true;
          socket?.resetAndDestroy();
        }
      });
      stream.on('end', () => {
        if (cut) return;
        tx.dotAt = Date.now();
        tx.raw = Buffer.concat(chunks);
        tx.mailroomId ??= /X-Mailroom-Id: (\S+)/i.exec(tx.raw.toString())?.[1];
        void opts.redis.get(opts.markKey(tx.mailroomId ?? '')).then((mark) => {
          tx.markAtDot = mark;
          const step = opts.onDot?.({ stream, socket, tx, n: i }) ?? 'accept';
          if (step === 'cut') {
            socket?.resetAndDestroy();
            return callback(Object.assign(new Error('cut'), { responseCode: 421 }));
          }
          if (step instanceof Error) return callback(step);
          callback(null, `2.0.0 Ok: queued as Q${i}`);
        });
      });
    },
  });
  server.server.on('connection', (socket: net.Socket) => {
    if (socket.remotePort !== undefined) sockets.set(socket.remotePort, socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  server.on('error', () => undefined);
  const port = (server.server.address() as net.AddressInfo).port;
  return {
    url: `smtp://127.0.0.1:${port}`,
    transactions,
    pausedAt: () => pausedAt,
    accepted: (id: string) => transactions.filter((t) => t.mailroomId === id && t.markAtDot !== undefined).length,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe('the hand-off mark sits right before the final dot of DATA', () => {
  let redis: RunningRedis;
  let client: RedisClient;

  beforeAll(async () => {
    // A Redis of its own: the SMTP server pauses its writes.
    redis = await startRedis();
    client = createRedis(redis.url, 'client');
  });
  afterAll(async () => {
    client?.disconnect();
    await redis?.stop();
  });

  /** A system whose worker sends through `server`, with a fresh namespace; closed by the caller. */
  async function systemFor(smtpUrl: string): Promise<TestSystem> {
    return startTestSystem({
      env: { MANAGED_SMTP_URL: smtpUrl, REDIS_URL: redis.url, SEND_ATTEMPTS: '3', WEBHOOK_SECRET, EVENTS_BATCH_WAIT_MS: '5' },
    });
  }
  /**
   * Runs `fn` against a recording SMTP server (`opts`, the mark's key filled in) and a system
   * whose worker sends through it, with a namespace of its own; closes both.
   */
  async function withRecordingSystem(
    opts: Omit<Parameters<typeof startRecordingServer>[0], 'redis' | 'markKey'>,
    fn: (ctx: { sys: TestSystem; server: Awaited<ReturnType<typeof startRecordingServer>>; prefix: string }) => Promise<void>,
  ): Promise<void> {
    let prefix = '';
    const server = await startRecordingServer({ ...opts, redis: client, markKey: (id) => ownKey(prefix, 'handing-off', id) });
    let sys: TestSystem | undefined;
    try {
      sys = await systemFor(server.url);
      prefix = sys.config.queuePrefix;
      await fn({ sys, server, prefix });
    } finally {
      await sys?.close();
      await server.close();
    }
  }
  const send = async (sys: TestSystem, key: string, subject: string) => {
    const r = await sys.request('POST', '/v1/emails', {
      key,
      body: { to: 'someone@example.com', type: 'invoice', subject, text: 'Hello' },
    });
    expect(r.status).toBe(202);
    return r.body.id as string;
  };
  const entryOf = (sys: TestSystem, id: string, want: (e: any) => boolean) =>
    waitFor(async () => {
      const e = await findEntry<any>(sys.mongo.db(sys.config.logsMongo.db), id);
      return e && want(e) ? e : null;
    }, 20_000);

  it('when the mark is held back, then the server has the body without the final dot until the mark is in Redis', async () => {
    const PAUSE_MS = 1000;
    await withRecordingSystem(
      {
        pauseWritesMs: PAUSE_MS,
      },
      async ({ sys, server }) => {
        const ws = await sys.createWorkspace('Mark');
        const id = await send(sys, ws.keys.send, 'Held back');
        await entryOf(sys, id, (e) => e.status === 'sent');
        const [tx] = server.transactions;
        process.stdout.write(
          `[hand-off] body at +0 ms (mark ${tx?.markAtBody ?? 'absent'}), final dot at +${tx!.dotAt! - tx!.bodyAt!} ms (mark ${tx?.markAtDot ? 'present' : 'absent'})\n`,
        );
        expect(server.transactions).toHaveLength(1);
        expect(tx!.mailroomId).toBe(id);
        // The body arrived with no mark; the final dot only once the mark could be written.
        expect(tx!.markAtBody).toBeNull();
        expect(tx!.markAtDot).toEqual(expect.any(String));
        // The pause began no earlier than it was asked for, and the dot came only after it ended.
        expect(tx!.dotAt!).toBeGreaterThanOrEqual(server.pausedAt() + PAUSE_MS - 20);
      },
    );
  });

  it('when 100 emails go through a pooled transport, then the mark is in Redis at every final dot', async () => {
    await withRecordingSystem({}, async ({ sys, server }) => {
      const ws = await sys.createWorkspace('Pool');
      const ids = await Promise.all(Array.from({ length: 100 }, (_, i) => send(sys, ws.keys.send, `Pooled ${i}`)));
      await waitFor(async () => server.transactions.filter((t) => t.markAtDot !== undefined).length >= 100, 20_000, '100 final dots');
      expect(server.transactions.map((t) => t.mailroomId).sort()).toEqual([...ids].sort());
      expect(server.transactions.filter((t) => !t.markAtDot)).toEqual([]);
    });
  });

  it("when a message is larger than the gate's 64 KiB blocks, then it arrives whole, its body before the mark and the final dot after it", async () => {
    const PAUSE_MS = 800;
    await withRecordingSystem(
      {
        pauseWritesMs: PAUSE_MS,
      },
      async ({ sys, server }) => {
        const ws = await sys.createWorkspace('Large');
        // 300 KB of bytes no two blocks share: a block lost, doubled or out of order changes the decoded file.
        const file = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7919 + (i >> 8)) & 0xff));
        const r = await sys.request('POST', '/v1/emails', {
          key: ws.keys.send,
          body: {
            to: 'someone@example.com',
            type: 'invoice',
            subject: 'Large',
            text: 'The invoice is attached.',
            attachments: [{ filename: 'invoice.bin', content: file.toString('base64'), contentType: 'application/octet-stream' }],
          },
        });
        expect(r.status).toBe(202);
        const id = r.body.id as string;
        await entryOf(sys, id, (e) => e.status === 'sent');
        const [tx] = server.transactions;
        expect(server.transactions).toHaveLength(1);
        expect(tx!.markAtBody).toBeNull();
        expect(tx!.markAtDot).toEqual(expect.any(String));
        expect(tx!.dotAt!).toBeGreaterThanOrEqual(server.pausedAt() + PAUSE_MS - 20);
        // The attachment's base64 part, decoded, is the file.
        const raw = tx!.raw!.toString('latin1');
        const part = raw.slice(raw.indexOf('filename=invoice.bin'));
        const b64 = part.slice(part.indexOf('\r\n\r\n') + 4, part.indexOf('\r\n--'));
        expect(Buffer.from(b64.replace(/\r\n/g, ''), 'base64').equals(file)).toBe(true);
      },
    );
  });

  it('when the connection is cut in the middle of the body, before the mark, then the email is retried normally and sent once', async () => {
    await withRecordingSystem(
      {
        // The mark waits for Redis while the body arrives (the pause outlasts any delay before the
        // body, so the mark cannot be set yet), and the first transaction is cut then.
        pauseWritesMs: 1000,
        onBody: ({ n }) => (n === 0 ? 'cut' : 'accept'),
      },
      async ({ sys, server }) => {
        const ws = await sys.createWorkspace('Cut');
        const id = await send(sys, ws.keys.send, 'Cut mid-body');
        const e = await entryOf(sys, id, (x) => x.status !== 'queued');
        expect(e).toMatchObject({ status: 'sent', attempts: 2, errorCode: null });
        expect(server.transactions).toHaveLength(2);
        expect(server.transactions[0]!.dotAt).toBeUndefined();
        expect(server.accepted(id)).toBe(1);
      },
    );
  });

  it('when the server answers the final dot with 451, then the answer is known and the email is retried', async () => {
    await withRecordingSystem(
      {
        onDot: ({ n }) => (n === 0 ? Object.assign(new Error('4.3.0 Try again later'), { responseCode: 451 }) : 'accept'),
      },
      async ({ sys, server }) => {
        const ws = await sys.createWorkspace('451');
        const id = await send(sys, ws.keys.send, 'Answered 451');
        const e = await entryOf(sys, id, (x) => x.status !== 'queued');
        expect(e).toMatchObject({ status: 'sent', attempts: 2, errorCode: null });
        expect(server.transactions).toHaveLength(2);
      },
    );
  });

  it('when the connection is lost after the final dot and before the answer, then the email is EHANDOFF_UNKNOWN and never sent again', async () => {
    await withRecordingSystem(
      {
        onDot: () => 'cut',
      },
      async ({ sys, server, prefix }) => {
        const ws = await sys.createWorkspace('Lost');
        const id = await send(sys, ws.keys.send, 'Lost after the dot');
        const e = await entryOf(sys, id, (x) => x.status !== 'queued');
        expect(e).toMatchObject({ status: 'send_failed', errorCode: 'EHANDOFF_UNKNOWN', attempts: 1 });
        expect(e.errorHint).toMatch(/cannot tell whether/);
        expect(e.error).toMatch(/after the whole email was sent/);
        // Not retried: one transaction, and the mark stays for any later attempt to see.
        await new Promise((r) => setTimeout(r, 300));
        expect(server.transactions).toHaveLength(1);
        expect(await client.get(ownKey(prefix, 'handing-off', id))).toEqual(expect.any(String));
      },
    );
  });

  it('when an EHANDOFF_UNKNOWN entry later gets provider events, then they apply, the error is cleared and the timeline says the event resolved it', async () => {
    await withRecordingSystem({ onDot: () => 'cut' }, async ({ sys, server }) => {
      const ws = await sys.createWorkspace('Resolved');
      const [delivered, bounced] = [
        await send(sys, ws.keys.send, 'Resolved by delivery'),
        await send(sys, ws.keys.send, 'Resolved by bounce'),
      ];
      for (const id of [delivered, bounced]) await entryOf(sys, id, (x) => x.errorCode === 'EHANDOFF_UNKNOWN');
      const at = (ms: number) => new Date(Date.now() + ms).toISOString();
      const events = [
        { id: 'ev-open', type: 'opened', timestamp: at(5_000), emailId: delivered },
        { id: 'ev-delivered', type: 'delivered', timestamp: at(1_000), emailId: delivered },
        { id: 'ev-bounce', type: 'bounced', bounceType: 'hard', detail: '550 5.1.1 no such user', timestamp: at(1_000), emailId: bounced },
      ];
      const raw = JSON.stringify(events);
      const r = await sys.request('POST', '/v1/webhooks/mailroom', {
        body: raw,
        headers: { 'mailroom-signature': signMailroomWebhook(WEBHOOK_SECRET, raw) },
      });
      expect(r.status).toBe(200);

      // Both events in: they may be applied in one batch or in two.
      const d = await entryOf(sys, delivered, (x) => x.opens === 1 && x.deliveredAt instanceof Date);
      expect(d).toMatchObject({ status: 'opened', error: null, errorCode: null, errorHint: null, opens: 1 });
      expect(d.deliveredAt).toBeInstanceOf(Date);
      // The first event applied settled it (the two may arrive in one batch or in two).
      expect(d.timeline.map((t: any) => t.type)).toEqual(['delivered', 'opened']);
      expect(d.timeline.filter((t: any) => t.resolvedHandOff)).toHaveLength(1);
      const resolver = d.timeline.find((t: any) => t.resolvedHandOff).type;
      const b = await entryOf(sys, bounced, (x) => x.status !== 'send_failed');
      expect(b).toMatchObject({ status: 'bounced', errorCode: 'BOUNCED', error: '550 5.1.1 no such user', bounceType: 'hard' });
      expect(b.timeline[0]).toMatchObject({ type: 'bounced', resolvedHandOff: true, changedStatus: true });

      // The API's timeline names the unknown hand-off and the event that resolved it.
      const view = await sys.request('GET', `/v1/email-logs/${delivered}`, { key: ws.keys.admin });
      expect(view.status).toBe(200);
      const types = view.body.timeline.map((t: { type: string }) => t.type);
      expect(types).toEqual(['queued', 'handoff_unknown', 'delivered', 'opened']);
      expect(view.body.timeline[1].detail).toMatch(new RegExp(`resolved by the provider's ${resolver} event`));
      expect(view.body.timeline.find((t: any) => t.type === resolver)).toMatchObject({ resolvedHandOff: true });

      // A redelivery of the same events changes nothing.
      const again = JSON.stringify(events);
      await sys.request('POST', '/v1/webhooks/mailroom', {
        body: again,
        headers: { 'mailroom-signature': signMailroomWebhook(WEBHOOK_SECRET, again, Math.floor(Date.now() / 1000) - 1) },
      });
      await new Promise((resolve) => setTimeout(resolve, 500));
      const still = await entryOf(sys, delivered, () => true);
      expect(still).toMatchObject({ status: 'opened', opens: 1, errorCode: null });
      expect(still.timeline).toHaveLength(2);
    });
  });

  it('when a worker died after the server accepted an email and before writing its entry, then the retry writes the entry from the mark and sends nothing', async () => {
    let sys: TestSystem | undefined;
    let prefix = '';
    const server = await startRecordingServer({ redis: client, markKey: (id) => ownKey(prefix, 'handing-off', id) });
    try {
      sys = await startTestSystem({ env: { MANAGED_SMTP_URL: server.url, REDIS_URL: redis.url }, worker: false });
      prefix = sys.config.queuePrefix;
      const ws = await sys.createWorkspace('Accepted, not written');
      const id = await send(sys, ws.keys.send, 'Accepted before the crash');
      // What such a worker leaves: its final-dot mark and the handed-off mark with the server's id and the time.
      const sentAt = new Date(Date.now() - 60_000).toISOString();
      await client.set(ownKey(prefix, 'handing-off', id), 'dead-attempt');
      await client.set(ownKey(prefix, 'handed-off', id), JSON.stringify({ p: 'PROVIDER-42', t: sentAt }));
      await sys.startWorker();
      const e = await entryOf(sys, id, (x) => x.status === 'sent');
      expect(e).toMatchObject({ status: 'sent', providerMessageId: 'PROVIDER-42', errorCode: null });
      expect(e.sentAt.toISOString()).toBe(sentAt);
      expect(server.transactions).toHaveLength(0);
    } finally {
      await sys?.close();
      await server.close();
    }
  });
});
