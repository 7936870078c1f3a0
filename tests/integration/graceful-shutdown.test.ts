import { Queue } from 'bullmq';
import { startSmtpSink, type SmtpSink } from '../../infra/dev/smtp-sink';
import { startTestSystem, waitFor, type TestSystem } from '../support/system';
import { findEntry } from '../support/log-entry';
import { startWorkerProcess } from '../support/worker-process';

const SIM = 'simulator.mailroom.test';

describe('graceful shutdown of the worker process', () => {
  let sink: SmtpSink;
  let sys: TestSystem;

  beforeAll(async () => {
    sink = await startSmtpSink({ slowMs: 1500 });
    sys = await startTestSystem({ env: { MANAGED_SMTP_URL: sink.url }, worker: false });
  });
  afterAll(async () => {
    await sys?.close();
    await sink?.close();
  });

  it('when the worker gets SIGTERM mid-send, then it finishes the send, records it and exits 0', async () => {
    const ws = await sys.createWorkspace('Shutdown');
    const worker = await startWorkerProcess(sys);
    try {
      const r = await sys.request('POST', '/v1/emails', {
        key: ws.keys.send,
        body: { to: `slow@${SIM}`, type: 'task_notification', subject: 'Reminder', text: 'Due today' },
      });
      expect(r.status).toBe(202);
      const queue = new Queue('send-email', { connection: sys.redis, prefix: sys.config.queuePrefix });
      try {
        await waitFor(async () => (await queue.getJobState(r.body.id)) === 'active', 10_000, 'job active');
        worker.child.kill('SIGTERM');
        expect((await worker.exited).code).toBe(0);
        expect(await queue.getJobState(r.body.id)).toBe('completed');
      } finally {
        await queue.close();
      }
      const entry = await findEntry(sys.mongo.db(sys.config.logsMongo.db), r.body.id);
      expect(entry?.status).toBe('sent');
      expect(sink.countFor(r.body.id)).toBe(1);
      expect(worker.output()).toMatch(/shutting down/);
    } finally {
      await worker.stop('SIGKILL');
    }
  });
});
