import { startFerretdb, type RunningFerretdb } from '../../infra/dev/ferretdb';
import { startSmtpSink, type SmtpSink } from '../../infra/dev/smtp-sink';
import { createOutbox } from '@mailroom/shared';
import { MongoClient } from 'mongodb';
import { startTestSystem, waitFor, type TestSystem } from '../support/system';
import { countEntries, findEntries, findEntry } from '../support/log-entry';

const SIM = 'simulator.mailroom.test';

describe('the logs database goes away after the SMTP server accepted a message', () => {
  let logsDb: RunningFerretdb;
  let sink: SmtpSink;
  let sys: TestSystem;

  beforeAll(async () => {
    // A logs database of its own, so this test can stop it without touching other tests.
    logsDb = await startFerretdb();
    sink = await startSmtpSink();
    sys = await startTestSystem({
      env: {
        MANAGED_SMTP_URL: sink.url,
        LOGS_MONGODB_URI: logsDb.uri,
        MONGODB_SERVER_SELECTION_TIMEOUT_MS: '500',
      },
    });
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
      // As a worker killed right after it began the hand-off leaves things.
      await queue.pause();
      const r = await sys.request('POST', '/v1/emails', {
        key: ws.keys.send,
        body: { to: `delivered@${SIM}`, type: 'invoice', subject: 'Cut short', text: 'x' },
      });
      expect(await outbox.beginHandOff(r.body.id)).toBe(true);
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
      expect(await queue.getJobState(r.body.id)).toBe('failed');
    } finally {
      await queue.close();
    }
  });
});
