/**
 * Retention benchmark: seeds old entries (7–9 months back) and fresh ones, measures the list
 * endpoint's first page before the cleanup, runs the cleanup while the list is being read, and
 * reports entries removed per second and list p95 during the cleanup against p95 before it.
 *
 *   pnpm exec tsx bench/retention.bench.ts [--old=1000000] [--fresh=100000]
 *     [--mongo-uri=mongodb://…/] [--baseline-requests=50]
 */
import { MongoClient, type Db } from 'mongodb';
import { createEmailLogRepository, createLogger, EMAIL_LOGS, loadConfig, runRetention, type EmailLogDoc } from '@mailroom/shared';
import { logEntry } from '../tests/support/log-entry';
import { startApiServer } from '../apps/api/src/api-server';
import { arg, pct, runBench, say } from './bench-kit';
import { startFerretdb } from '../infra/dev/ferretdb';
import { startRedis } from '../infra/dev/redis';

const OLD = Number(arg('old', '1000000'));
const FRESH = Number(arg('fresh', '100000'));
const BASELINE = Number(arg('baseline-requests', '50'));
const DAY = 86_400_000;
const CONTENT = 'Hello,\n\nyour invoice INV-1 is attached. Thank you for your business.\n'.repeat(4);

const entry = (workspaceId: string, sentAt: Date): EmailLogDoc =>
  logEntry(workspaceId, { sentAt, recipient: `client${sentAt.getTime() % 9973}@example.com`, status: 'delivered', deliveredAt: sentAt });

/** Entries left in the log. */
const countLeft = (db: Db): Promise<number> => db.collection(EMAIL_LOGS).countDocuments({});

async function main() {
  const redis = await startRedis();
  const mongo = arg('mongo-uri', '') ? null : await startFerretdb();
  const mongoUri = arg('mongo-uri', '') || mongo!.uri;
  const config = loadConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    PORT: '0',
    HOST: '127.0.0.1',
    REDIS_URL: redis.url,
    MONGODB_URI: `${mongoUri.replace(/\/?$/, '/')}retention_bench`,
    MANAGED_SMTP_URL: 'smtp://127.0.0.1:2525',
    MANAGED_FROM: 'bench@mailroom.test',
    QUEUE_PREFIX: '{retbench}',
    RATE_LIMIT_ADMIN_PER_MINUTE: '0',
  });
  const api = await startApiServer(config, createLogger({ level: 'silent', name: 'bench' }));
  const client = await MongoClient.connect(mongoUri);
  try {
    const ws = (await (
      await fetch(`${api.url}/v1/workspaces`, {
        method: 'POST',
        headers: { authorization: `Bearer ${config.operatorToken}`, 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'Retention bench' }),
      })
    ).json()) as { id: string; keys: { admin: string } };
    const repo = createEmailLogRepository(client.db(config.logsMongo.db));
    const now = Date.now();
    const seedStarted = Date.now();
    // Old entries first, as a real log fills up over time.
    for (const [count, from, span] of [
      [OLD, now - 270 * DAY, 60 * DAY],
      [FRESH, now - 30 * DAY, 30 * DAY],
    ] as const) {
      for (let i = 0; i < count; i += 5000) {
        const docs = Array.from({ length: Math.min(5000, count - i) }, (_, j) => entry(ws.id, new Date(from + ((i + j) / count) * span)));
        // Each entry with its stored content, as the send path writes them.
        await repo.importEntries(
          docs,
          docs.map((d) => ({
            _id: d._id,
            workspaceId: d.workspaceId,
            sentAt: d.sentAt,
            to: d.recipient,
            subject: d.subject,
            text: CONTENT,
          })),
        );
      }
    }
    say(`seeded ${OLD} old + ${FRESH} fresh entries in ${((Date.now() - seedStarted) / 1000).toFixed(0)} s`);

    const page = async () => {
      const t = performance.now();
      const r = await fetch(`${api.url}/v1/email-logs?limit=50`, { headers: { authorization: `Bearer ${ws.keys.admin}` } });
      await r.arrayBuffer();
      if (r.status !== 200) throw new Error(`list answered ${r.status}`);
      return performance.now() - t;
    };
    const baseline: number[] = [];
    for (let i = 0; i < BASELINE; i++) baseline.push(await page());
    say(`list before cleanup: p50 ${pct(baseline, 50).toFixed(0)} ms, p95 ${pct(baseline, 95).toFixed(0)} ms (${BASELINE} requests)`);

    const during: number[] = [];
    let cleaning = true;
    const reader = (async () => {
      while (cleaning) during.push(await page());
    })();
    const result = await runRetention({
      logs: repo,
      log: createLogger({ level: 'silent', name: 'bench' }),
      now: new Date(now),
      months: 6,
      pauseMs: 5,
    });
    cleaning = false;
    await reader;
    const rate = result.removed / (result.durationMs / 1000);
    say(
      `cleanup removed ${result.removed} entries and ${result.contentRemoved} contents in ${(result.durationMs / 1000).toFixed(1)} s: ${rate.toFixed(0)} entries/s`,
    );
    say(`list during cleanup: p50 ${pct(during, 50).toFixed(0)} ms, p95 ${pct(during, 95).toFixed(0)} ms (${during.length} requests)`);
    say(
      `RESULT removed_per_s=${rate.toFixed(0)} list_p95_before=${pct(baseline, 95).toFixed(0)}ms list_p95_during=${pct(during, 95).toFixed(0)}ms ratio=${(pct(during, 95) / pct(baseline, 95)).toFixed(2)}x left=${await countLeft(client.db(config.logsMongo.db))}`,
    );
  } finally {
    await client.close();
    await api.close();
    await mongo?.stop();
    await redis.stop();
  }
}

runBench(main);
