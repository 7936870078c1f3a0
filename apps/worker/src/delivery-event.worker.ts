import { Worker, type ConnectionOptions, type Job } from 'bullmq';
import {
  DeliveryEvent,
  QUEUES,
  type ApplyResult,
  type Config,
  type EmailEventsRepository,
  type Logger,
  type SuppressionRepository,
  type SuppressionRequest,
} from '@mailroom/shared';

export type DeliveryEventResult = 'applied' | 'duplicate' | 'orphaned';

/** Thrown for an event whose entry is not there yet: BullMQ retries it with backoff. */
export class EntryNotFoundYetError extends Error {
  override name = 'EntryNotFoundYetError';
}

export interface DeliveryEventWorkerDeps {
  config: Config;
  connection: ConnectionOptions;
  events: EmailEventsRepository;
  suppressions: SuppressionRepository;
  log: Logger;
}

const SUPPRESSION_CONCURRENCY = 8;

interface Waiting {
  event: DeliveryEvent;
  resolve(r: ApplyResult): void;
  reject(err: unknown): void;
}

/**
 * Gathers events from concurrently running jobs into batches: one flush reads the entries
 * involved, folds their events and writes each changed entry once. One flush runs at a time, so
 * a process never races itself for an entry (the version guard settles races between
 * processes: the loser re-reads and redoes, see events.repository.ts). Events arriving meanwhile
 * make up the next batch, so the worker's concurrency should exceed the batch size: with both at
 * 500, a flush holds every running job and the worker idles while BullMQ refills (measured: ~10%
 * of the time).
 */
export function createEventBatcher(deps: Omit<DeliveryEventWorkerDeps, 'connection'>) {
  const { batchSize, batchWaitMs } = deps.config.events;
  let queue: Waiting[] = [];
  let timer: NodeJS.Timeout | null = null;
  let flushing: Promise<void> | null = null;

  const flush = async (): Promise<void> => {
    if (timer) clearTimeout(timer);
    timer = null;
    if (flushing || queue.length === 0) return;
    const batch = queue.splice(0, batchSize);
    flushing = (async () => {
      try {
        const { results, suppress } = await deps.events.applyBatch(batch.map((w) => w.event));
        // Suppress before answering the jobs: a failed add makes the batch's jobs retry.
        await addSuppressions(deps.suppressions, suppress);
        batch.forEach((w, i) => w.resolve(results[i]!));
      } catch (err) {
        batch.forEach((w) => w.reject(err));
      }
    })();
    await flushing;
    flushing = null;
    if (queue.length >= batchSize) void flush();
    else if (queue.length) schedule();
  };
  const schedule = () => {
    timer ??= setTimeout(() => void flush(), batchWaitMs);
  };

  return {
    submit(event: DeliveryEvent): Promise<ApplyResult> {
      return new Promise((resolve, reject) => {
        queue.push({ event, resolve, reject });
        if (queue.length >= batchSize) void flush();
        else schedule();
      });
    },
    /** Resolves once nothing is waiting or being written. */
    async drain() {
      while (flushing || queue.length) {
        await (flushing ?? flush());
      }
    },
  };
}

/** Suppression writes (an upsert and a Redis INCR each): the first per address, a few at a time. */
async function addSuppressions(repo: SuppressionRepository, requests: readonly SuppressionRequest[]): Promise<void> {
  const first = new Map<string, SuppressionRequest>();
  for (const r of requests) {
    const key = `${r.workspaceId}\n${r.address.trim().toLowerCase()}`;
    if (!first.has(key)) first.set(key, r);
  }
  const todo = [...first.values()];
  await Promise.all(
    Array.from({ length: Math.min(SUPPRESSION_CONCURRENCY, todo.length) }, async () => {
      for (let r = todo.shift(); r; r = todo.shift()) await repo.add(r);
    }),
  );
}

/**
 * The processor: parses the job, hands the event to the batcher, and decides what a missing
 * entry means: retry (the event beat the send outcome to the database), or after the last
 * attempt keep it in `orphan_events` rather than drop it.
 */
export function createDeliveryEventProcessor(deps: Omit<DeliveryEventWorkerDeps, 'connection'>) {
  const batcher = createEventBatcher(deps);
  const process = async (job: Job): Promise<DeliveryEventResult> => {
    const event = DeliveryEvent.parse(job.data);
    const r = await batcher.submit(event);
    if (r.kind !== 'missing') return r.kind;
    const attempt = job.attemptsMade + 1;
    if (attempt < (job.opts.attempts ?? 1))
      throw new EntryNotFoundYetError(`no entry yet for ${event.emailId ?? event.providerMessageId ?? event.id}`);
    await deps.events.recordOrphan(event, 'no matching email log entry', attempt);
    deps.log.warn({ eventId: event.id, provider: event.provider, emailId: event.emailId }, 'delivery event kept as orphan');
    return 'orphaned';
  };
  return Object.assign(process, { drain: batcher.drain });
}

/** The BullMQ worker on the delivery-events queue. Nothing runs until the worker app calls this. */
export function createDeliveryEventWorker(deps: DeliveryEventWorkerDeps): Worker<unknown, DeliveryEventResult> {
  return new Worker(QUEUES.deliveryEvents, createDeliveryEventProcessor(deps), {
    connection: deps.connection,
    prefix: deps.config.queuePrefix,
    // Jobs mostly wait for their batch, so concurrency is what fills a batch.
    concurrency: deps.config.events.concurrency,
    maxStalledCount: 2,
  });
}
