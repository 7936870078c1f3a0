/**
 * Outbound webhooks: what they add to the send path, and how fast messages go out.
 *
 * One worker process (its own node, as in production) sends for two workspaces of one
 * namespace: `plain` has no webhook endpoint, `hooked` has one (all message types) pointing at a
 * local receiver (a real HTTP server in this process that answers 204). Legs alternate
 * plain, hooked, plain, hooked (--rounds), each sending --emails through the producer library:
 *   - send path: the worker's CPU per email while it sends; during a hooked leg the
 *     outbound-webhooks queue is paused, so the figure is the send path with its lookup and
 *     enqueue of the `email.sent` message, and no delivery;
 *   - delivery: then the queue is resumed and the receiver takes the leg's messages: messages/s,
 *     and CPU per message of the worker (sign, POST, record the attempt) and of the database.
 * A plain warm-up leg comes first (the JIT), not counted. Prints each leg and the ratio
 * hooked / plain of CPU per email (the target: ≤ 1.10).
 *
 *   pnpm exec tsx bench/outbound-webhooks.bench.ts [--emails=2000] [--rounds=2] [--mongo-uri=…] [--redis-url=…]
 */
import type { ChildProcess } from 'node:child_process';
import { MongoClient } from 'mongodb';
import {
  coalesceWrites,
  createEmailProducer,
  createRedis,
  createSecretBox,
  createSendEmailQueue,
  createWebhookEndpointDirectory,
  createWebhookEndpointRepository,
  createWorkspaceRepository,
  loadConfig,
  createOutboundWebhookQueue,
  createWebhookDispatcher,
  newId,
  withOutcomeMessages,
  type EmailLogRepository,
  type SendEmailInput,
  type SendOutcome,
  type WebhookEndpointRepository,
} from '@mailroom/shared';
import { arg, cpuMeter, invoice as benchInvoice, runBench, say, sleep, startNode, stop } from './bench-kit';
import { startFerretdb } from '../infra/dev/ferretdb';
import { getFreePort } from '../infra/dev/process';
import { startRedis } from '../infra/dev/redis';
import { startWebhookReceiver } from '../infra/dev/webhook-receiver';
import { sendOutcome } from '../tests/support/send-outcome';

const EMAILS = Number(arg('emails', '2000'));
const ROUNDS = Number(arg('rounds', '2'));
const CHUNK = 200;

/** The benches' invoice, with metadata (it travels in every message body). */
const invoice = (i: number): SendEmailInput => ({ ...benchInvoice(i), metadata: { customer: `c_${i % 97}` } });

/** A `sent` outcome as the worker records it. */
function outcome(workspaceId: string, i: number): SendOutcome {
  const id = newId('em');
  const c = invoice(i);
  return sendOutcome({
    id,
    workspaceId,
    recipient: c.to as string,
    subject: c.subject,
    providerMessageId: `q${i}`,
    reference: c.reference ?? null,
    metadata: c.metadata ?? null,
    content: { to: c.to as string, subject: c.subject, html: c.html },
  });
}

/**
 * The webhook step alone, in this process: `recordOutcome` around a write that does nothing, with
 * the real endpoint lookup (Redis) and the real enqueue (addBulk into Redis, under a queue prefix
 * no worker drains), 200 at a time as the worker's concurrency runs them. Returns µs of this
 * process's CPU an outcome for: no webhook step, a workspace without endpoints, one with one.
 */
async function stepCost(redisUrl: string, prefix: string, endpoints: WebhookEndpointRepository, plain: string, hooked: string, n: number) {
  // As in the worker (worker-app.ts): the lookup on `own`, the enqueue on BullMQ's connection, both coalescing writes.
  const own = coalesceWrites(createRedis(redisUrl, 'worker'));
  const redis = coalesceWrites(createRedis(redisUrl, 'worker'));
  const directory = createWebhookEndpointDirectory(endpoints, own, prefix);
  const queue = createOutboundWebhookQueue(redis, `{bench-hooks-step-${Date.now().toString(36)}}`, 1, 1000);
  const written: EmailLogRepository = { recordOutcome: async () => true } as unknown as EmailLogRepository;
  const stepped = withOutcomeMessages(written, createWebhookDispatcher({ queue, directory }));
  const run = async (repo: EmailLogRepository, ws: string) => {
    const outcomes = Array.from({ length: n }, (_, i) => outcome(ws, i));
    const t0 = process.cpuUsage();
    for (let i = 0; i < n; i += 200) await Promise.all(outcomes.slice(i, i + 200).map((o) => repo.recordOutcome(o)));
    const d = process.cpuUsage(t0);
    return (d.user + d.system) / n;
  };
  await run(stepped, hooked); // warm-up
  const sums = { none: 0, plain: 0, hooked: 0 };
  const rounds = 5;
  for (let r = 0; r < rounds; r++) {
    sums.none += await run(written, plain);
    sums.plain += await run(stepped, plain);
    sums.hooked += await run(stepped, hooked);
  }
  await queue.obliterate({ force: true });
  await queue.close();
  own.disconnect();
  redis.disconnect();
  return { none: sums.none / rounds, plain: sums.plain / rounds, hooked: sums.hooked / rounds };
}

async function main() {
  const redisServer = arg('redis-url', '') ? null : await startRedis();
  const redisUrl = arg('redis-url', '') || redisServer!.url;
  const mongoServer = arg('mongo-uri', '') ? null : await startFerretdb();
  const mongoUri = arg('mongo-uri', '') || mongoServer!.uri;
  const sinkPort = await getFreePort();
  const receiver = await startWebhookReceiver();
  receiver.respond = () => 204;
  const children: ChildProcess[] = [];
  const env = {
    NODE_ENV: 'production',
    LOG_LEVEL: 'info',
    REDIS_URL: redisUrl,
    MONGODB_URI: `${mongoUri.replace(/\/?$/, '/')}bench_hooks`,
    OPERATOR_TOKEN: 'bench-operator-token-0123456789',
    SECRETS_KEY: 'bench-secrets-key-0123456789abcdef',
    MANAGED_SMTP_URL: `smtp://127.0.0.1:${sinkPort}`,
    MANAGED_FROM: 'Mailroom <bench@mailroom.test>',
    SMTP_IGNORE_TLS: 'true',
    QUEUE_PREFIX: `{bench-hooks-${Date.now().toString(36)}}`,
    // The receiver listens on loopback over http.
    WEBHOOK_TARGETS_ALLOW_PRIVATE: 'true',
    METRICS_PORT: '0',
  };
  const config = loadConfig(env);
  const client = await MongoClient.connect(mongoUri);
  await client.db(config.mongo.db).dropDatabase();
  await client.db(config.logsMongo.db).dropDatabase();
  const redis = createRedis(redisUrl, 'client');
  try {
    const sink = await startNode('smtp-sink', 'infra/dev/smtp-sink.main.ts', { SMTP_SINK_PORT: String(sinkPort) }, /listening/);
    children.push(sink);
    const worker = await startNode('worker', 'apps/worker/src/main.ts', env, /worker ready/);
    children.push(worker);
    say(`servers: redis ${redisUrl}, mongo ${mongoUri}, smtp sink :${sinkPort}, receiver ${receiver.url}; ${EMAILS} emails a leg`);

    const workspaces = createWorkspaceRepository(client.db(config.mongo.db));
    const plain = (await workspaces.create('Plain')).workspace._id;
    const hooked = (await workspaces.create('Hooked')).workspace._id;
    const endpoints = createWebhookEndpointRepository(client.db(config.mongo.db), createSecretBox(config.secretsKey));
    await endpoints.create(hooked, { url: receiver.url, events: null, description: 'bench' });
    await createWebhookEndpointDirectory(endpoints, redis, config.queuePrefix).changed(hooked);

    const sendQueue = createSendEmailQueue(redis, config.queuePrefix, config.send.attempts, config.send.backoffMs);
    const hooks = createOutboundWebhookQueue(redis, config.queuePrefix, 1, 1000);
    const producer = createEmailProducer(sendQueue, { maxAttachmentsBytes: config.send.maxAttachmentsBytes });
    const servers = {
      worker: worker.pid,
      ...(mongoServer?.pid ? { ferretdb: mongoServer.pid } : {}),
      ...(redisServer?.pid ? { redis: redisServer.pid } : {}),
    };

    let sentSoFar = 0;
    const sendLeg = async (workspaceId: string): Promise<number> => {
      const cpu = cpuMeter({ worker: worker.pid }, { postgres: false });
      const all = cpuMeter(servers, { postgres: mongoServer !== null });
      const started = Date.now();
      for (let i = 0; i < EMAILS; i += CHUNK) {
        await producer.sendMany(
          workspaceId,
          Array.from({ length: Math.min(CHUNK, EMAILS - i) }, (_, j) => invoice(sentSoFar + i + j)),
        );
      }
      sentSoFar += EMAILS;
      while ((await sendQueue.getCompletedCount()) < sentSoFar) await sleep(50);
      const seconds = (Date.now() - started) / 1000;
      const { usPerUnit, line } = cpu.measure(EMAILS, 'email');
      say(`  send: ${(EMAILS / seconds).toFixed(0)} emails/s; worker ${line}; all: ${all.report(EMAILS, 'email')}`);
      return usPerUnit;
    };

    say('warm-up (plain, not counted):');
    await sendLeg(plain);
    const ratios: number[] = [];
    const sums = { plain: 0, hooked: 0 };
    for (let round = 1; round <= ROUNDS; round++) {
      say(`round ${round}, plain (no endpoint):`);
      const a = await sendLeg(plain);
      say(`round ${round}, hooked (one endpoint, deliveries paused while sending):`);
      await hooks.pause();
      const b = await sendLeg(hooked);
      const waiting = await hooks.getWaitingCount();
      say(`  ${waiting} messages waiting on outbound-webhooks`);
      const before = receiver.received.length;
      const cpu = cpuMeter(servers, { postgres: mongoServer !== null });
      const started = Date.now();
      await hooks.resume();
      await receiver.waitForDelivered(before + EMAILS, 300_000);
      const seconds = (Date.now() - started) / 1000;
      say(
        `  delivery: ${EMAILS} messages in ${seconds.toFixed(1)} s = ${(EMAILS / seconds).toFixed(0)} messages/s; ${cpu.report(EMAILS, 'message')}`,
      );
      ratios.push(b / a);
      sums.plain += a;
      sums.hooked += b;
      say(`  worker CPU an email, hooked / plain: ${b.toFixed(0)} / ${a.toFixed(0)} µs = ${(b / a).toFixed(3)}`);
    }
    const step = await stepCost(redisUrl, config.queuePrefix, endpoints, plain, hooked, EMAILS);
    const perEmail = sums.plain / ROUNDS;
    say(
      `webhook step alone (this process, ${EMAILS} outcomes x 5, alternating): none ${step.none.toFixed(1)} µs, no endpoint ${step.plain.toFixed(1)} µs (+${(step.plain - step.none).toFixed(1)}), one endpoint ${step.hooked.toFixed(1)} µs (+${(step.hooked - step.none).toFixed(1)}) an outcome`,
    );
    say(
      `  = ${(((step.plain - step.none) / perEmail) * 100).toFixed(1)} % (no endpoint) and ${(((step.hooked - step.none) / perEmail) * 100).toFixed(1)} % (one endpoint) of the worker's ${perEmail.toFixed(0)} µs of CPU an email in the plain legs (Redis's own share not included)`,
    );
    const ids = new Set(receiver.received.map((r) => r.id));
    say(
      `RESULT send-path CPU an email hooked/plain per round ${ratios.map((r) => r.toFixed(3)).join(', ')}; over all rounds ${(sums.hooked / sums.plain).toFixed(3)} (target ≤ 1.10); ${ids.size} distinct messages received of ${EMAILS * ROUNDS}`,
    );
    await sendQueue.close();
    await hooks.close();
  } finally {
    for (const c of children.reverse()) await stop(c);
    redis.disconnect();
    await client.close();
    await receiver.close();
    await mongoServer?.stop();
    await redisServer?.stop();
  }
}

runBench(main);
