import os from 'node:os';
import { Queue } from 'bullmq';
import { startRedisCluster, type RunningRedisCluster } from '../../infra/dev/redis-cluster';
import { startSmtpSink, type SmtpSink } from '../../infra/dev/smtp-sink';
import { startTestSystem, waitFor, type TestSystem } from '../support/system';
import { countEntries, findEntries } from '../support/log-entry';
import { startWorkerProcess, type WorkerProcess } from '../support/worker-process';

const SIM = 'simulator.mailroom.test';

describe('the pipeline on a 3-node Redis Cluster with three worker processes', () => {
  let cluster: RunningRedisCluster;
  let sink: SmtpSink;
  let sys: TestSystem;
  const workers: WorkerProcess[] = [];

  beforeAll(async () => {
    cluster = await startRedisCluster(3);
    sink = await startSmtpSink();
    sys = await startTestSystem({ env: { MANAGED_SMTP_URL: sink.url, REDIS_URL: cluster.url, SEND_ATTEMPTS: '3' }, worker: false });
    // Three worker processes with the system's environment (so REDIS_URL is the cluster). All
    // starts settle before beforeAll ends, so afterAll sees every process that came up.
    const started = await Promise.allSettled([0, 1, 2].map(() => startWorkerProcess(sys, { readyTimeoutMs: 60_000 })));
    for (const s of started) if (s.status === 'fulfilled') workers.push(s.value);
    const failed = started.find((s) => s.status === 'rejected');
    if (failed) throw failed.reason;
  }, 120_000);
  afterAll(async () => {
    await Promise.all(workers.map((w) => w.stop()));
    await sys?.close();
    await sink?.close();
    await cluster?.stop();
  });

  it('when 300 emails and a few failures go through the cluster, then each is sent once and logged once, idempotency and retries included', async () => {
    const ws = await sys.createWorkspace('Cluster');
    const ids: string[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: 10 }, async () => {
        while (next < 300) {
          const i = next++;
          const to = i % 50 === 0 ? `tempfail-once+${i}@${SIM}` : i % 60 === 1 ? `bounce+${i}@${SIM}` : `delivered+${i}@${SIM}`;
          const r = await sys.request('POST', '/v1/emails', {
            key: ws.keys.send,
            headers: { 'Idempotency-Key': `cluster-${i}` },
            body: { to, type: 'digest', subject: `Digest ${i}`, text: 'Weekly' },
          });
          expect(r.status).toBe(202);
          ids.push(r.body.id);
        }
      }),
    );
    // A replayed key returns the first id through the cluster too.
    const again = await sys.request('POST', '/v1/emails', {
      key: ws.keys.send,
      headers: { 'Idempotency-Key': 'cluster-7' },
      body: { to: `delivered+7@${SIM}`, type: 'digest', subject: 'Digest 7', text: 'Weekly' },
    });
    expect(ids).toContain(again.body.id);

    const db = sys.mongo.db(sys.config.logsMongo.db);
    await waitFor(async () => (await countEntries(db, { status: { $in: ['sent', 'send_failed'] } })) === 300, 60_000, '300 final entries');
    const docs = await findEntries<{ _id: string; status: string; attempts: number }>(db);
    expect(docs).toHaveLength(300);
    const bounced = docs.filter((d) => d.status === 'send_failed');
    expect(bounced.length).toBe(5); // i = 1, 61, 121, 181, 241
    for (const id of ids) {
      const doc = docs.find((d) => d._id === id)!;
      expect(sink.countFor(id)).toBe(doc.status === 'sent' ? 1 : 0);
    }
    const retried = docs.filter((d) => d.status === 'sent' && d.attempts === 2);
    expect(retried.length).toBe(6); // i = 0, 50, …, 250

    // Every BullMQ key of the queue lives under the hash tag, so in one slot.
    const queue = new Queue('send-email', { connection: sys.redis, prefix: sys.config.queuePrefix });
    try {
      expect(await queue.getCompletedCount()).toBe(295);
      // The load was shared: each process sent some. A job's processedBy is the send worker's
      // name (host:pid) from the attempt that completed it.
      const sentBy = new Map(workers.map((w) => [`${os.hostname()}:${w.child.pid}`, 0]));
      for (const job of await queue.getCompleted(0, -1)) {
        if (job.returnvalue?.status !== 'sent') continue;
        const by = job.processedBy ?? '(none)';
        sentBy.set(by, (sentBy.get(by) ?? 0) + 1);
      }
      process.stdout.write(`[cluster] sent per worker process: ${JSON.stringify(Object.fromEntries(sentBy))}\n`);
      expect(sentBy.size).toBe(3);
      for (const n of sentBy.values()) expect(n).toBeGreaterThan(0);
    } finally {
      await queue.close();
    }
  }, 120_000);
});
