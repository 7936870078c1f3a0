import { startFerretdb, type RunningFerretdb } from '../../infra/dev/ferretdb';
import { sleep } from '../../infra/dev/process';
import { startSmtpSink, type SmtpSink } from '../../infra/dev/smtp-sink';
import { createOutbox } from '@mailroom/shared';
import { MongoClient } from 'mongodb';
import { startTestSystem, waitFor, type TestSystem } from '../support/system';
import { countEntries, findEntries, findEntry } from '../support/log-entry';

const SIM = 'simulator.mailroom.test';

/** A logs database of its own, so a test can stop it without touching other tests. */
async function startWithOwnLogsDb(env: Record<string, string>) {
  const logsDb = await startFerretdb();
  const sink = await startSmtpSink();
  const sys = await startTestSystem({
    env: { MANAGED_SMTP_URL: sink.url, LOGS_MONGODB_URI: logsDb.uri, MONGODB_SERVER_SELECTION_TIMEOUT_MS: '500', ...env },
  });
  return { logsDb, sink, sys };
}

describe('the logs database goes away after the SMTP server accepted a message', () => {
  let logsDb: RunningFerretdb;
  let sink: SmtpSink;
  let sys: TestSystem;

  beforeAll(async () => {
    ({ logsDb, sink, sys } = await startWithOwnLogsDb({}));
  });
  afterAll(async () => {
    await sys?.close();
    await sink?.close();
    await logsDb?.stop();
  });

  it('when the logs DB is down during sends, then nothing is sent twice and every entry appears once it is back', async () => {
    const ws = await sys.createWorkspace('Outage');
    const outbox = createOutbox(sys.redis, sys.config.queuePrefix);

    await logsDb.kill();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await sys.request('POST', '/v1/emails', {
        key: ws.keys.send,
        body: { to: `delivered+${i}@${SIM}`, type: 'digest', subject: `Digest ${i}`, text: 'Weekly digest' },
      });
      expect(r.status).toBe(202);
      ids.push(r.body.id);
    }
    // All five were handed off while the logs DB was down; their outcomes wait in Redis.
    await waitFor(async () => ids.every((id) => sink.countFor(id) === 1), 20_000, 'five hand-offs');
    await waitFor(async () => (await outbox.size()) === 5, 20_000, 'five staged outcomes');
    // The jobs completed: no retry will send them again.
    await waitFor(
      async () => (await sys.redis.zcard(`${sys.config.queuePrefix}:send-email:completed`)) === 5,
      20_000,
      'five completed jobs',
    );

    await new Promise((r) => setTimeout(r, 1000));
    await logsDb.start();

    const client = await MongoClient.connect(logsDb.uri);
    try {
      const db = client.db(sys.config.logsMongo.db);
      await waitFor(async () => (await countEntries(db, { _id: { $in: ids } })) === 5, 20_000, 'entries written after recovery');
      const docs = await findEntries<{ _id: string; status: string }>(db, { _id: { $in: ids } });
      expect(docs.map((d) => d.status)).toEqual(['sent', 'sent', 'sent', 'sent', 'sent']);
      await waitFor(async () => (await outbox.size()) === 0, 5_000, 'outbox drained');
    } finally {
      await client.close();
    }
    for (const id of ids) expect(sink.countFor(id)).toBe(1);
  });

  it('when a job is retried after its hand-off was recorded in Redis, then it is not sent again', async () => {
    const ws = await sys.createWorkspace('Retry');
    const r = await sys.request('POST', '/v1/emails', {
      key: ws.keys.send,
      body: { to: `delivered@${SIM}`, type: 'contract', subject: 'Contract', text: 'Sign here' },
    });
    const id: string = r.body.id;
    await waitFor(async () => sink.countFor(id) === 1, 10_000, 'hand-off');
    // Replay the job as if the worker had died after the hand-off, before completing the job.
    const { Queue } = await import('bullmq');
    const queue = new Queue('send-email', { connection: sys.redis, prefix: sys.config.queuePrefix });
    try {
      await waitFor(async () => (await queue.getJobState(id)) === 'completed', 10_000, 'job completed');
      const job = (await queue.getJob(id))!;
      await job.retry('completed');
      await waitFor(async () => (await queue.getJobState(id)) === 'completed', 10_000, 'retried job completed');
      const again = (await queue.getJob(id))!;
      expect(again.returnvalue).toMatchObject({ status: 'already-sent' });
    } finally {
      await queue.close();
    }
    expect(sink.countFor(id)).toBe(1);
  });

  it('when an earlier attempt died mid hand-off, then the email is reported EHANDOFF_UNKNOWN and not sent again', async () => {
    const ws = await sys.createWorkspace('Unknown');
    const { Queue } = await import('bullmq');
    const queue = new Queue('send-email', { connection: sys.redis, prefix: sys.config.queuePrefix });
    const outbox = createOutbox(sys.redis, sys.config.queuePrefix);
    try {
      // As a worker killed after its final dot, before the server's answer, leaves things.
      await queue.pause();
      const r = await sys.request('POST', '/v1/emails', {
        key: ws.keys.send,
        body: { to: `delivered@${SIM}`, type: 'invoice', subject: 'Cut short', text: 'x' },
      });
      expect(await outbox.markHandOff(r.body.id, 'attempt-of-a-dead-worker')).toBe(true);
      await queue.resume();
      // This file's logs database is a server of its own.
      const client = await MongoClient.connect(logsDb.uri);
      try {
        const db = client.db(sys.config.logsMongo.db);
        const d = await waitFor(
          async () => {
            const e = await findEntry<{ _id: string; status: string; errorCode: string | null }>(db, r.body.id);
            return e?.status === 'send_failed' ? e : null;
          },
          10_000,
          'reported entry',
        );
        expect(d.errorCode).toBe('EHANDOFF_UNKNOWN');
      } finally {
        await client.close();
      }
      expect(sink.countFor(r.body.id)).toBe(0);
      // The job fails right after its entry is written: wait for that, not race it.
      await waitFor(async () => ((await queue.getJobState(r.body.id)) === 'failed' ? true : null), 10_000, 'failed job');
    } finally {
      await queue.close();
    }
  });
});

describe('the logs database is down for 30 s in the middle of a load of sends', () => {
  const EMAILS = 1500;
  const OUTAGE_MS = 30_000;
  let logsDb: RunningFerretdb;
  let sink: SmtpSink;
  let sys: TestSystem;

  beforeAll(async () => {
    ({ logsDb, sink, sys } = await startWithOwnLogsDb({ RATE_LIMIT_SEND_PER_MINUTE: '0' }));
  });
  afterAll(async () => {
    await sys?.close();
    await sink?.close();
    await logsDb?.stop();
  });

  /** Sends `n` emails through the API, 16 clients at once, at about `perSecond` in all. */
  const sendPaced = async (key: string, n: number, perSecond: number): Promise<Array<{ id: string; at: number }>> => {
    const accepted: Array<{ id: string; at: number }> = [];
    const start = Date.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < n) {
          const i = next++;
          const due = start + (i * 1000) / perSecond;
          if (due > Date.now()) await sleep(due - Date.now());
          const r = await sys.request('POST', '/v1/emails', {
            key,
            body: { to: `delivered+load${i}@${SIM}`, type: 'automation', subject: `Load ${i}`, text: 'Automated' },
          });
          if (r.status === 202) accepted.push({ id: r.body.id, at: Date.now() });
        }
      }),
    );
    return accepted;
  };

  it('when the logs DB stops for 30 s while emails are sent, then none is lost or sent twice and all entries appear once it is back', async () => {
    const ws = await sys.createWorkspace('Long outage');
    const outbox = createOutbox(sys.redis, sys.config.queuePrefix);
    // About 15 s of sending: the first few seconds before the stop, the rest during it.
    const sending = sendPaced(ws.keys.send, EMAILS, 100);
    await waitFor(async () => sink.messages.length >= 300, 30_000, 'first 300 hand-offs');
    const stoppedAt = Date.now();
    await logsDb.kill();
    let peakOutbox = 0;
    while (Date.now() - stoppedAt < OUTAGE_MS) {
      peakOutbox = Math.max(peakOutbox, await outbox.size());
      await sleep(500);
    }
    const accepted = await sending;
    expect(accepted).toHaveLength(EMAILS);
    const ids = accepted.map((a) => a.id);
    const acceptedDuring = accepted.filter((a) => a.at >= stoppedAt).length;
    const handedOffDuring = sink.messages.filter((m) => m.receivedAt.getTime() >= stoppedAt).length;
    await logsDb.start();
    const backAt = Date.now();

    const client = await MongoClient.connect(logsDb.uri);
    try {
      const db = client.db(sys.config.logsMongo.db);
      // The flusher writes what waited in the outbox in chunks, about 2 s for 1,200 outcomes here
      // (written one by one it took about 55 s): 30 s catches a flusher that went slow again.
      await waitFor(async () => (await countEntries(db, { status: 'sent' })) >= EMAILS, 30_000, `${EMAILS} sent entries`);
      const entriesMs = Date.now() - backAt;
      await waitFor(async () => (await outbox.size()) === 0, 10_000, 'outbox drained');
      const drainMs = Date.now() - backAt;
      const docs = await findEntries<{ _id: string; status: string }>(db, {}, { projection: { status: 1 } });
      const counts = ids.map((id) => sink.countFor(id));
      process.stdout.write(
        `[faults] logs DB down ${backAt - stoppedAt} ms: ${ids.length} accepted (${acceptedDuring} while down), ` +
          `${handedOffDuring} handed off while down, outbox peak ${peakOutbox}; once back, all entries in ${entriesMs} ms, ` +
          `outbox empty in ${drainMs} ms; entries ${docs.length}, not sent ${docs.filter((d) => d.status !== 'sent').length}, ` +
          `twice ${counts.filter((c) => c > 1).length}, never ${counts.filter((c) => c === 0).length}\n`,
      );
      // The outage was real: emails went out while the logs DB was down, their outcomes waiting in Redis.
      expect(acceptedDuring).toBeGreaterThan(0);
      expect(handedOffDuring).toBeGreaterThan(0);
      expect(peakOutbox).toBeGreaterThan(0);
      // Exactly once at the SMTP server; one entry per email, sent; accepted by the sink = entries sent.
      expect(counts.filter((c) => c !== 1)).toEqual([]);
      expect(sink.messages).toHaveLength(EMAILS);
      expect(docs).toHaveLength(EMAILS);
      expect(new Set(docs.map((d) => d._id)).size).toBe(EMAILS);
      expect(docs.filter((d) => d.status !== 'sent')).toEqual([]);
      expect(docs.map((d) => d._id).sort()).toEqual(sink.messages.map((m) => m.mailroomId).sort());
    } finally {
      await client.close();
    }
  }, 180_000);
});
