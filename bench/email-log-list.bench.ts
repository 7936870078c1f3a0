/**
 * Email-log list benchmark: seeds N entries (default 1,000,000) into a fresh logs database on a
 * FerretDB 2 + DocumentDB it starts itself, starts the API in this process, and reports p50/p95
 * of the first page and of filtered pages.
 *
 *   pnpm exec tsx bench/email-log-list.bench.ts [--rows=1000000] [--share=1] [--requests=200]
 *     [--max-seconds=120] [--keep-dir=.mailroom/bench-list] [--mongo-uri=mongodb://…/ (skip FerretDB)]
 *
 * `--share` is the fraction of the rows that belong to the measured workspace (the rest are
 * spread over 9 others).
 */
import path from 'node:path';
import { MongoClient } from 'mongodb';
import {
  createEmailLogRepository,
  createLogger,
  createWorkspaceRepository,
  EMAIL_TYPES,
  loadConfig,
  type Config,
  newId,
  type EmailLogDoc,
  type EmailStatus,
} from '@mailroom/shared';
import { logEntry } from '../tests/support/log-entry';
import { startApiServer } from '../apps/api/src/api-server';
import { startFerretdb, type RunningFerretdb } from '../infra/dev/ferretdb';
import { startRedis } from '../infra/dev/redis';

const arg = (name: string, dflt: string) =>
  process.argv
    .find((a) => a.startsWith(`--${name}=`))
    ?.split('=')
    .slice(1)
    .join('=') ?? dflt;
const ROWS = Number(arg('rows', '1000000'));
const SHARE = Number(arg('share', '1'));
const REQUESTS = Number(arg('requests', '200'));
const MAX_SECONDS = Number(arg('max-seconds', '120'));
const MONGO_URI = arg('mongo-uri', '');
/**
 * `--keep-dir=<dir>`: the engine's PostgreSQL cluster lives there and is kept, seeded once, so
 * later runs with the same directory only measure.
 */
const KEEP_DIR = arg('keep-dir', '');
/** Which pages to measure. */
const SCENARIOS = new Set(arg('scenarios', 'first,filtered,recipient,search').split(','));
const BATCH = 5000;
const DAY_MS = 86_400_000;

/** A plausible mix: mostly delivered or sent, a few bounces and failures. */
const STATUS_MIX: Array<[EmailStatus, number]> = [
  ['sent', 0.3],
  ['delivered', 0.4],
  ['opened', 0.15],
  ['clicked', 0.05],
  ['bounced', 0.03],
  ['complained', 0.005],
  ['send_failed', 0.05],
  ['failed', 0.015],
];
const pickStatus = (r: number): EmailStatus => {
  let acc = 0;
  for (const [s, p] of STATUS_MIX) if ((acc += p) > r) return s;
  return 'sent';
};

const log = (msg: string) => process.stdout.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] ?? NaN;
};

function doc({ id, workspaceId, sentAt }: { id: string; workspaceId: string; sentAt: Date }, i: number): EmailLogDoc {
  const status = pickStatus(Math.random());
  const failed = status === 'send_failed';
  const opened = status === 'opened' || status === 'clicked';
  return logEntry(workspaceId, {
    _id: id,
    sentAt,
    recipient: `client${i % 50_000}@example${i % 97}.com`,
    status,
    type: EMAIL_TYPES[i % EMAIL_TYPES.length]!,
    from: 'Acme <billing@acme.test>',
    subject: `Invoice INV-${i}`,
    error: failed ? '550 5.1.1 user unknown' : null,
    errorCode: failed ? 'SMTP_550' : null,
    errorHint: failed ? 'The address does not exist at the recipient server.' : null,
    sendMethod: i % 3 === 0 ? 'custom' : 'managed',
    providerMessageId: `p${i}`,
    reference: { kind: 'invoice', id: `inv_${i}` },
    openedAt: opened ? sentAt : null,
    opens: opened ? 1 : 0,
  });
}

async function measure(name: string, url: string, key: string): Promise<void> {
  const times: number[] = [];
  const first: number[] = [];
  let items = 0;
  const deadline = Date.now() + MAX_SECONDS * 1000;
  for (let i = 0; i < REQUESTS + 1 && Date.now() < deadline; i++) {
    const t0 = performance.now();
    const res = await fetch(url, { headers: { authorization: `Bearer ${key}` } });
    const body = (await res.json()) as { items?: unknown[] };
    const ms = performance.now() - t0;
    if (res.status !== 200) throw new Error(`${name}: ${res.status} ${JSON.stringify(body).slice(0, 200)}`);
    items = body.items?.length ?? 0;
    if (i >= 1)
      times.push(ms); // the first one warms caches and connections
    else first.push(ms);
  }
  if (times.length === 0) times.push(...first);
  log(
    `${name}: ${times.length} requests, ${items} items/page, p50 ${pct(times, 50).toFixed(1)} ms, p95 ${pct(times, 95).toFixed(1)} ms, max ${Math.max(...times).toFixed(1)} ms` +
      (times.length < REQUESTS ? ` (stopped after ${MAX_SECONDS} s)` : ''),
  );
}

async function measureAll(config: Config, workspaceId: string, adminKey: string): Promise<void> {
  const t1 = Date.now();
  const api = await startApiServer(config, createLogger({ level: 'silent', name: 'bench' }));
  log(`API up (indexes built on the seeded collection) in ${((Date.now() - t1) / 1000).toFixed(1)} s`);
  try {
    if (SCENARIOS.has('first')) await measure('first page (limit 50)', `${api.url}/v1/email-logs?limit=50`, adminKey);
    if (SCENARIOS.has('filtered'))
      await measure(
        'filtered page (status=bounced&type=invoice)',
        `${api.url}/v1/email-logs?limit=50&status=bounced&type=invoice`,
        adminKey,
      );
    if (SCENARIOS.has('recipient'))
      await measure(
        'recipient page (recipient=client123@example26.com)',
        `${api.url}/v1/email-logs?limit=50&recipient=client123%40example26.com`,
        adminKey,
      );
    if (SCENARIOS.has('search')) await measure('search page (q=INV-12)', `${api.url}/v1/email-logs?limit=50&q=INV-12`, adminKey);
  } finally {
    await api.close();
  }
}

async function main(): Promise<void> {
  const redis = await startRedis();
  let ferret: RunningFerretdb | undefined;
  let mongoUri = MONGO_URI;
  if (!mongoUri) {
    ferret = await startFerretdb({ ...(KEEP_DIR ? { dataDir: path.resolve(KEEP_DIR) } : {}), timeoutMs: 120_000 });
    mongoUri = ferret.uri;
  }
  log(`server: ${ferret ? 'FerretDB 2 + DocumentDB' : mongoUri}; rows ${ROWS}, share of measured workspace ${SHARE}`);
  const config = loadConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    PORT: '0',
    HOST: '127.0.0.1',
    REDIS_URL: redis.url,
    MONGODB_URI: `${mongoUri.replace(/\/?$/, '/')}bench_main`,
    LOGS_MONGODB_DB: 'bench_logs',
    MANAGED_SMTP_URL: 'smtp://127.0.0.1:2525',
    MANAGED_FROM: 'Mailroom <no-reply@mailroom.test>',
    OPERATOR_TOKEN: 'bench-operator-token-0123456789',
    SECRETS_KEY: 'bench-secrets-key-0123456789abcdef',
    RATE_LIMIT_ADMIN_PER_MINUTE: '0',
    MONGODB_SERVER_SELECTION_TIMEOUT_MS: '30000',
  });
  const client = await MongoClient.connect(config.mongo.uri);
  try {
    const repo = createEmailLogRepository(client.db(config.logsMongo.db));
    const meta = client.db(config.logsMongo.db).collection<{ _id: string; workspaceId: string; admin: string; rows: number }>('bench_meta');
    const seeded = KEEP_DIR ? await meta.findOne({ _id: 'seed' }) : null;
    if (seeded) {
      log(`cluster in ${KEEP_DIR} kept from an earlier run: ${seeded.rows} rows, not seeding`);
      await measureAll(config, seeded.workspaceId, seeded.admin);
      return;
    }
    const { workspace, keys } = await createWorkspaceRepository(client.db(config.mongo.db)).create('Bench');
    const others = Array.from({ length: 9 }, () => newId('ws'));
    const now = Date.now();
    const t0 = Date.now();
    const rows = Array.from({ length: ROWS }, (_, i) => {
      const sentAt = new Date(now - Math.floor(Math.random() * 150 * DAY_MS));
      return { id: newId('em', sentAt.getTime()), workspaceId: Math.random() < SHARE ? workspace._id : others[i % others.length]!, sentAt };
    });
    for (let done = 0; done < ROWS; done += BATCH) {
      const n = Math.min(BATCH, ROWS - done);
      const docs = Array.from({ length: n }, (_, k) => doc(rows[done + k]!, done + k));
      await repo.importEntries(docs);
      if ((done / BATCH) % 20 === 0) {
        const s = (Date.now() - t0) / 1000;
        log(`seeded ${done + n} in ${s.toFixed(0)} s (${Math.round((done + n) / s)} rows/s)`);
      }
    }
    const seedS = (Date.now() - t0) / 1000;
    log(`seeded ${ROWS} rows in ${seedS.toFixed(1)} s (${Math.round(ROWS / seedS)} rows/s)`);

    if (KEEP_DIR) await meta.insertOne({ _id: 'seed', workspaceId: workspace._id, admin: keys.admin, rows: ROWS });
    await measureAll(config, workspace._id, keys.admin);
  } finally {
    await client.close();
    await ferret?.stop();
    await redis.stop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${String((err as Error)?.stack ?? err)}\n`);
  process.exit(1);
});
