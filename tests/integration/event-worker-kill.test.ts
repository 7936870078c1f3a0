/**
 * The delivery-event worker SIGKILLed while it applies a large batch of events: its jobs stall,
 * another worker process takes them over, and every event must count exactly once in the end
 * (opens, clicks, statuses, timelines and suppressions as the fold of the events without a kill).
 */
import {
  applyEvents,
  createDeliveryEventQueue,
  createEmailEventsRepository,
  createEmailLogRepository,
  deliveryEventJobId,
  emptyEventFields,
  suppresses,
  type DeliveryEvent,
  type EventFields,
} from '@mailroom/shared';
import { startTestSystem, waitFor, type TestSystem } from '../support/system';
import { findEntries, logEntry } from '../support/log-entry';
import { startWorkerProcess, type WorkerProcess } from '../support/worker-process';
import { comparable, randomEvents, rng, SENT_AT } from '../unit/email-events.gen';

const ENTRIES = 2000;
const MACHINE_WINDOW_SECONDS = 2;

/** The entry's event fields as stored (missing ones at their defaults), for comparison with a fold. */
function storedFields(doc: Record<string, any>): EventFields {
  const f = emptyEventFields(doc.status);
  for (const k of Object.keys(f) as Array<keyof EventFields>) if (doc[k] !== undefined) (f as any)[k] = doc[k];
  return f;
}

describe('the delivery-event worker killed with SIGKILL mid-batch', () => {
  let sys: TestSystem;
  const workers: WorkerProcess[] = [];

  beforeAll(async () => {
    // No email is sent here: the relay's address only has to parse.
    sys = await startTestSystem({
      env: { MANAGED_SMTP_URL: 'smtp://127.0.0.1:9', MACHINE_OPEN_WINDOW_SECONDS: String(MACHINE_WINDOW_SECONDS) },
      worker: false,
    });
  });
  afterAll(async () => {
    await Promise.all(workers.map((w) => w.stop('SIGKILL')));
    await sys?.close();
  });

  it('when the worker dies while applying 10,000 events, then a new one finishes them and each counts exactly once', async () => {
    const ws = await sys.createWorkspace('Events kill');
    const db = sys.mongo.db(sys.config.logsMongo.db);
    const entries = Array.from({ length: ENTRIES }, (_, i) =>
      logEntry(ws.id, { sentAt: SENT_AT, recipient: `r${i}@example.com`, _id: `em_01KAAAAAAAAAAAAAAAAAA${String(i).padStart(5, '0')}` }),
    );
    await createEmailLogRepository(db).importEntries(entries);

    // 0 to 10 events an entry (5 on average), of every type, some machine opens, from a seed.
    const r = rng(16);
    const events = new Map<string, DeliveryEvent[]>();
    for (const e of entries) {
      events.set(
        e._id,
        randomEvents(r, r.int(11)).map((ev, k) => ({ ...ev, id: `${e._id}-${k}`, emailId: e._id })),
      );
    }
    const all = [...events.values()].flat();
    const queue = createDeliveryEventQueue(sys.redis, sys.config.queuePrefix, 8, 2000);
    const counts = () => queue.getJobCounts('completed', 'failed', 'active', 'wait', 'delayed');
    try {
      for (let i = 0; i < all.length; i += 1000) {
        await queue.addBulk(all.slice(i, i + 1000).map((e) => ({ name: e.type, data: e, opts: { jobId: deliveryEventJobId(e) } })));
      }
      const env = { MACHINE_OPEN_WINDOW_SECONDS: String(MACHINE_WINDOW_SECONDS) };
      const first = await startWorkerProcess(sys, { env });
      workers.push(first);
      /** Events in the entries: a batch's events are there before their jobs are acknowledged. */
      const inEntries = async () =>
        (await findEntries<{ _id: string; eventIds: string[] }>(db, {}, { projection: { eventIds: 1 } })).reduce(
          (n, d) => n + (d.eventIds?.length ?? 0),
          0,
        );
      await waitFor(async () => ((await counts()).completed ?? 0) >= all.length * 0.3, 60_000, '30 % of the events applied');
      // Kill in the middle of a batch: once events are seen written whose jobs are not completed yet.
      const midBatch = await waitFor(
        async () => {
          const completed = (await counts()).completed ?? 0;
          return (await inEntries()) > completed ? true : null;
        },
        20_000,
        'a batch written but not acknowledged',
      ).catch(() => false);
      await first.stop('SIGKILL');
      const atKill = await counts();
      // Applied to an entry but not acknowledged: the events the next worker will meet again.
      const applied = await inEntries();
      const started = Date.now();
      const second = await startWorkerProcess(sys, { env });
      workers.push(second);
      // The killed worker's active jobs come back once their locks expire (30 s) and stall checks run.
      const done = await waitFor(
        async () => {
          const c = await counts();
          return (c.completed ?? 0) + (c.failed ?? 0) >= all.length ? c : null;
        },
        120_000,
        'every event job finished',
      );
      process.stdout.write(
        `[faults] event worker SIGKILL: ${all.length} events on ${ENTRIES} entries; at the kill ${atKill.completed} completed, ` +
          `${atKill.active} active, ${atKill.wait} waiting, ${applied} in entries (${applied - (atKill.completed ?? 0)} applied but not ` +
          `acknowledged${midBatch ? '' : ', no batch caught in the middle'}); the rest finished ${Date.now() - started} ms after the restart; ${JSON.stringify(done)}\n`,
      );
      expect(atKill.completed).toBeLessThan(all.length);
      expect(done.failed ?? 0).toBe(0);
    } finally {
      await queue.close();
    }

    // Every entry equals the fold of its events (what a run without the kill gives), but for the
    // flags that describe arrival order.
    const docs = new Map((await findEntries(db)).map((d) => [d._id, d]));
    const wrong: string[] = [];
    const suppressed = new Set<string>();
    for (const e of entries) {
      const evs = events.get(e._id)!;
      const expected = applyEvents(emptyEventFields('sent'), evs, { sentAt: SENT_AT, machineWindowMs: MACHINE_WINDOW_SECONDS * 1000 });
      const actual = storedFields(docs.get(e._id)!);
      if (JSON.stringify(comparable(actual)) !== JSON.stringify(comparable(expected))) wrong.push(e._id);
      if (evs.some((ev) => suppresses(ev))) suppressed.add(e.recipient);
    }
    if (wrong.length) {
      const id = wrong[0]!;
      const expected = applyEvents(emptyEventFields('sent'), events.get(id)!, {
        sentAt: SENT_AT,
        machineWindowMs: MACHINE_WINDOW_SECONDS * 1000,
      });
      expect({ id, fields: comparable(storedFields(docs.get(id)!)) }).toEqual({ id, fields: comparable(expected) });
    }
    expect(wrong).toEqual([]);
    // Opens and clicks in total, as a cross-check of the counts.
    const sum = (k: 'opens' | 'clicks') => [...docs.values()].reduce((n, d) => n + (d[k] ?? 0), 0);
    const expectedSum = (k: 'opens' | 'clicks') =>
      entries.reduce(
        (n, e) =>
          n +
          applyEvents(emptyEventFields('sent'), events.get(e._id)!, { sentAt: SENT_AT, machineWindowMs: MACHINE_WINDOW_SECONDS * 1000 })[k],
        0,
      );
    expect({ opens: sum('opens'), clicks: sum('clicks') }).toEqual({ opens: expectedSum('opens'), clicks: expectedSum('clicks') });
    // Every hard bounce and complaint put its recipient on the suppression list.
    const list = await sys.mongo.db(sys.config.mongo.db).collection('suppressions').find({ workspaceId: ws.id }).toArray();
    expect(list.map((s) => s.address).sort()).toEqual([...suppressed].sort());
  }, 240_000);
});

describe('a worker that died between applying a hard bounce and adding its suppression', () => {
  let sys: TestSystem;

  beforeAll(async () => {
    sys = await startTestSystem({ env: { MANAGED_SMTP_URL: 'smtp://127.0.0.1:9', EVENTS_BATCH_WAIT_MS: '5' } });
  });
  afterAll(async () => {
    await sys?.close();
  });

  it('when the bounce is delivered again, then it is a duplicate for the entry and the suppression is added', async () => {
    const ws = await sys.createWorkspace('Bounce again');
    const db = sys.mongo.db(sys.config.logsMongo.db);
    const entry = logEntry(ws.id, { recipient: 'gone@example.com' });
    await createEmailLogRepository(db).importEntries([entry]);
    const bounce: DeliveryEvent = {
      id: 'bounce-1',
      provider: 'mailroom',
      type: 'bounced',
      bounceType: 'hard',
      detail: '550 5.1.1 unknown user',
      at: new Date().toISOString(),
      receivedAt: new Date().toISOString(),
      emailId: entry._id,
    };
    // What the dead worker got done: the entry written, the suppression not yet added.
    const first = await createEmailEventsRepository(db, { machineWindowMs: 2000 }).applyBatch([bounce]);
    expect(first.results).toEqual([{ kind: 'applied', emailId: entry._id, workspaceId: entry.workspaceId }]);
    const suppressions = sys.mongo.db(sys.config.mongo.db).collection('suppressions');
    expect(await suppressions.countDocuments({ workspaceId: ws.id })).toBe(0);

    // Its job comes back (stalled) and the running worker applies it again.
    const queue = createDeliveryEventQueue(sys.redis, sys.config.queuePrefix, 3, 20);
    try {
      const job = await queue.add('bounced', bounce, { jobId: deliveryEventJobId(bounce) });
      const result = await waitFor(async () =>
        (await job.getState()) === 'completed' ? (await queue.getJob(job.id!))!.returnvalue : null,
      );
      expect(result).toBe('duplicate');
    } finally {
      await queue.close();
    }
    expect(await suppressions.find({ workspaceId: ws.id }).toArray()).toEqual([
      expect.objectContaining({ address: 'gone@example.com', reason: 'hard_bounce', emailId: entry._id }),
    ]);
    const doc = (await findEntries(db, { _id: entry._id }))[0]!;
    expect(doc).toMatchObject({ status: 'bounced', eventIds: [deliveryEventJobId(bounce)] });
    expect(doc.timeline).toHaveLength(1);
  });
});
