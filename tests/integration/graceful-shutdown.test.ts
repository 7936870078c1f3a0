import { spawn } from 'node:child_process';
import path from 'node:path';
import { Queue } from 'bullmq';
import { REPO_ROOT } from '../../infra/dev/process';
import { startSmtpSink, type SmtpSink } from '../../infra/dev/smtp-sink';
import { OPERATOR_TOKEN, startTestSystem, waitFor, type TestSystem } from '../support/system';
import { findEntry } from '../support/log-entry';

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
    const env = {
      ...process.env,
      NODE_ENV: 'test',
      LOG_LEVEL: 'info',
      REDIS_URL: process.env.TEST_REDIS_URL!,
      MONGODB_URI: sys.config.mongo.uri,
      LOGS_MONGODB_DB: sys.config.logsMongo.db,
      OPERATOR_TOKEN,
      SECRETS_KEY: 'test-secrets-key-0123456789abcdef',
      QUEUE_PREFIX: sys.config.queuePrefix,
      MANAGED_SMTP_URL: sink.url,
      MANAGED_FROM: sys.config.managed.from,
    };
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'apps/worker/src/main.ts')], {
      cwd: REPO_ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      await waitFor(async () => output.includes('worker ready'), 30_000, 'worker ready');
      const r = await sys.request('POST', '/v1/emails', {
        key: ws.keys.send,
        body: { to: `slow@${SIM}`, type: 'task_notification', subject: 'Reminder', text: 'Due today' },
      });
      expect(r.status).toBe(202);
      const queue = new Queue('send-email', { connection: sys.redis, prefix: sys.config.queuePrefix });
      try {
        await waitFor(async () => (await queue.getJobState(r.body.id)) === 'active', 10_000, 'job active');
        child.kill('SIGTERM');
        expect(await exited).toBe(0);
        expect(await queue.getJobState(r.body.id)).toBe('completed');
      } finally {
        await queue.close();
      }
      const entry = await findEntry(sys.mongo.db(sys.config.logsMongo.db), r.body.id);
      expect(entry?.status).toBe('sent');
      expect(sink.countFor(r.body.id)).toBe(1);
      expect(output).toMatch(/shutting down/);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
