/**
 * The managed SMTP relay misbehaves under load: the sink's chaos mode (infra/dev/smtp-chaos.ts)
 * resets connections (at MAIL FROM, at RCPT TO, and after reading the DATA body and its final dot
 * but before its 250), answers 421 (at MAIL FROM and RCPT TO) and replies late. Every email cut
 * before its final dot must still reach the relay exactly once, through retries spaced by a
 * backoff; one cut after its final dot may have been delivered (a real relay may have queued it),
 * so it is reported EHANDOFF_UNKNOWN and never sent again.
 */
import { Queue } from 'bullmq';
import { EMAIL_STATUSES } from '@mailroom/shared';
import { startSmtpSink, type SinkAttempt, type SmtpSink } from '../../infra/dev/smtp-sink';
import { startTestSystem, waitFor, type TestSystem } from '../support/system';
import { countEntries, findEntries } from '../support/log-entry';

const SIM = 'simulator.mailroom.test';
const EMAILS = 1000;
const SEND_ATTEMPTS = 10;
const BACKOFF_MS = 50;
/** BullMQ's exponential backoff with jitter 0.2 (queues.ts) waits at least 0.8 × the delay. */
const MIN_RETRY_GAP_MS = 0.8 * BACKOFF_MS;
/** nodemailer's pool re-queues a message whose reused connection closed before DATA, up to 5 times. */
const POOL_REQUEUES = 5;
/** Statuses an email has once the SMTP server accepted it. */
const HANDED_OFF = EMAIL_STATUSES.filter((s) => s !== 'queued' && s !== 'send_failed');

/** Sends `n` emails through the API with 16 concurrent clients; returns the accepted ids and recipients. */
async function sendMany(sys: TestSystem, key: string, n: number, tag: string): Promise<Array<{ id: string; to: string }>> {
  const sent: Array<{ id: string; to: string }> = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < n) {
        const i = next++;
        const to = `delivered+${tag}${i}@${SIM}`;
        const r = await sys.request('POST', '/v1/emails', {
          key,
          body: { to, type: 'automation', subject: `${tag} ${i}`, text: 'Automated' },
        });
        if (r.status === 202) sent.push({ id: r.body.id, to });
      }
    }),
  );
  return sent;
}

/** Gaps between one email's transactions: from the sink's last reply (or cut) to the next MAIL FROM. */
function gaps(attempts: SinkAttempt[]): number[] {
  return attempts.slice(1).map((a, k) => a.startedAt - (attempts[k]!.endedAt ?? Infinity));
}

describe('an SMTP relay that drops connections, answers 421 and replies slowly', () => {
  let sink: SmtpSink;
  let sys: TestSystem;

  beforeAll(async () => {
    sink = await startSmtpSink({
      chaos: { drop: 0.08, reject421: 0.08, slow: 0.1, slowMs: 150, dropAt: ['mail', 'rcpt', 'data'], seed: 7 },
    });
    sys = await startTestSystem({
      env: {
        MANAGED_SMTP_URL: sink.url,
        RATE_LIMIT_SEND_PER_MINUTE: '0',
        SEND_ATTEMPTS: String(SEND_ATTEMPTS),
        SEND_BACKOFF_MS: String(BACKOFF_MS),
      },
    });
  });
  afterAll(async () => {
    await sys?.close();
    await sink?.close();
  });

  it('when 1,000 emails meet drops, 421s and slow replies, then each is accepted once and logged sent after retries with backoff, or EHANDOFF_UNKNOWN when cut after its final dot', async () => {
    const started = Date.now();
    const ws = await sys.createWorkspace('Chaos');
    const sent = await sendMany(sys, ws.keys.send, EMAILS, 'chaos');
    expect(sent).toHaveLength(EMAILS);
    const ids = sent.map((s) => s.id);
    const db = sys.mongo.db(sys.config.logsMongo.db);

    // Settled: every job completed, nothing waiting, delayed or active that could still send.
    const queue = new Queue('send-email', { connection: sys.redis, prefix: sys.config.queuePrefix });
    try {
      await waitFor(
        async () => {
          const c = await queue.getJobCounts('completed', 'failed', 'wait', 'active', 'delayed', 'prioritized');
          const n = (...states: string[]) => states.reduce((sum, state) => sum + (c[state] ?? 0), 0);
          return n('completed', 'failed') === EMAILS && n('wait', 'active', 'delayed', 'prioritized') === 0 ? c : null;
        },
        90_000,
        `${EMAILS} finished jobs`,
      );
      // The emails cut after their final dot end as unknown, the only failed jobs.
      expect(await queue.getJobCounts('failed')).toEqual({ failed: sink.chaos!.counts.drop.data });
    } finally {
      await queue.close();
    }
    await waitFor(
      async () => (await countEntries(db, { status: { $in: ['sent', 'send_failed'] } })) >= EMAILS,
      30_000,
      `${EMAILS} final entries`,
    );
    const elapsedMs = Date.now() - started;

    const docs = await findEntries<{ _id: string; status: string; attempts: number; errorCode: string | null }>(
      db,
      {},
      { projection: { status: 1, attempts: 1, errorCode: 1 } },
    );
    const report = sink.chaos!;
    const counts = ids.map((id) => sink.countFor(id));
    const retried = docs.filter((d) => d.attempts > 1);
    const byRecipient = sent.map((s) => ({ ...s, attempts: report.attemptsTo(s.to) }));
    // Cut after the final dot, before the 250: whether a real relay delivered it is unknown.
    const cutAfterDot = new Set(
      byRecipient.filter((s) => s.attempts.some((a) => a.fault === 'drop' && a.stage === 'data')).map((s) => s.id),
    );
    const allGaps = byRecipient.flatMap((s) => gaps(s.attempts));
    const unattributed = report.attempts.filter((a) => a.to === undefined).length;
    const c = report.counts;
    process.stdout.write(
      `[faults] SMTP chaos: ${ids.length} accepted in ${elapsedMs} ms; sink ${sink.messages.length} messages, ` +
        `${report.attempts.length} transactions (${unattributed} cut before RCPT), ${report.connections} connections; ` +
        `drops ${JSON.stringify(c.drop)}, 421 ${JSON.stringify(c['421'])}, slow ${JSON.stringify(c.slow)}; ` +
        `entries ${docs.length}, retried ${retried.length}, max attempts ${Math.max(...docs.map((d) => d.attempts))}, ` +
        `emails with >1 transaction ${byRecipient.filter((s) => s.attempts.length > 1).length}, ` +
        `min retry gap ${allGaps.length ? Math.min(...allGaps) : 'n/a'} ms; ` +
        `twice ${counts.filter((n) => n > 1).length}, never ${counts.filter((n) => n === 0).length}, ` +
        `unknown (cut after the final dot) ${docs.filter((d) => d.errorCode === 'EHANDOFF_UNKNOWN').length}\n`,
    );

    // Each kind of fault happened, the drop after a full DATA body among them.
    for (const stage of ['mail', 'rcpt', 'data'] as const) expect(c.drop[stage]).toBeGreaterThan(0);
    for (const stage of ['mail', 'rcpt'] as const) expect(c['421'][stage]).toBeGreaterThan(0);
    expect(c.slow.mail + c.slow.rcpt + c.slow.data).toBeGreaterThan(0);

    // Exactly once at the relay, but for the emails cut after their final dot (never sent again),
    // and nothing it accepted that the API did not.
    expect(cutAfterDot.size).toBe(c.drop.data);
    expect(ids.filter((id, k) => counts[k] !== (cutAfterDot.has(id) ? 0 : 1))).toEqual([]);
    expect(sink.messages).toHaveLength(EMAILS - cutAfterDot.size);
    // One entry per email, sent, or EHANDOFF_UNKNOWN when cut after the final dot; reconciliation:
    // accepted by the sink = entries at least sent.
    expect(docs).toHaveLength(EMAILS);
    expect(new Set(docs.map((d) => d._id)).size).toBe(EMAILS);
    expect(docs.filter((d) => d.status !== (cutAfterDot.has(d._id) ? 'send_failed' : 'sent'))).toEqual([]);
    expect(docs.filter((d) => cutAfterDot.has(d._id) && d.errorCode !== 'EHANDOFF_UNKNOWN')).toEqual([]);
    const accepted = new Set(sink.messages.map((m) => m.mailroomId));
    const handedOff = new Set(docs.filter((d) => (HANDED_OFF as readonly string[]).includes(d.status)).map((d) => d._id));
    expect([...accepted].sort()).toEqual([...handedOff].sort());

    // Retries happened, within their budget: BullMQ's attempts, each with the pool's re-queues.
    expect(retried.length).toBeGreaterThan(0);
    expect(docs.filter((d) => d.attempts > SEND_ATTEMPTS)).toEqual([]);
    const attemptsOf = new Map(docs.map((d) => [d._id, d.attempts]));
    const overBudget = byRecipient.filter((s) => s.attempts.length > attemptsOf.get(s.id)! * (1 + POOL_REQUEUES));
    expect(overBudget.map((s) => ({ id: s.id, transactions: s.attempts.length, attempts: attemptsOf.get(s.id) }))).toEqual([]);
    // Only the last transaction of an email was accepted (or cut after its final dot); the ones before failed.
    for (const s of byRecipient) {
      expect(s.attempts.at(-1)?.outcome).toBe(cutAfterDot.has(s.id) ? 'dropped' : 'accepted');
      expect(s.attempts.slice(0, -1).filter((a) => a.outcome === 'accepted')).toEqual([]);
    }
    // No tight loop: an email's next transaction began at least the minimum backoff after the last one ended.
    expect(allGaps.length).toBeGreaterThan(0);
    expect(allGaps.filter((g) => g < MIN_RETRY_GAP_MS)).toEqual([]);
  }, 150_000);
});
