import {
  deliveryEventJobId,
  retentionCutoff,
  type DeliveryEventQueue,
  type EmailEventsRepository,
  type Logger,
  type OrphanEventDoc,
} from '@mailroom/shared';

/** Orphans looked at per sweep (the oldest first). */
const SWEEP_BATCH = 500;

export interface OrphanAdoption {
  /** One sweep: queues the events of orphans whose entry exists now; resolves to how many. */
  sweep(): Promise<number>;
  stop(): Promise<void>;
}

/**
 * An event kept in `orphan_events` (its entry did not exist through all its retries: a send
 * retried for longer than the event's backoff, say) is applied once the entry appears: every
 * `intervalMs` the oldest orphans are matched against the log, and those with an entry go back
 * on the delivery-events queue like any other event (under a job id of their own, since the
 * first job is still remembered). Applying is idempotent by event id, so a sweep cut short
 * between queueing and forgetting does no harm: the next one queues the same job id again.
 * Several scheduler processes may sweep at once for the same reason. Orphans older than the
 * log's retention are dropped: an entry that old would be removed as soon as it appeared.
 */
export function startOrphanAdoption(deps: {
  events: EmailEventsRepository;
  queue: DeliveryEventQueue;
  log: Logger;
  intervalMs: number;
  retentionMonths: number;
}): OrphanAdoption {
  let running: Promise<number> | null = null;
  const sweep = async (): Promise<number> => {
    const expired = await deps.events.removeOrphansRecordedBefore(retentionCutoff(new Date(), deps.retentionMonths));
    if (expired > 0) deps.log.info({ expired }, 'orphan delivery events past retention dropped');
    const adoptable: OrphanEventDoc[] = await deps.events.adoptableOrphans(SWEEP_BATCH);
    if (adoptable.length === 0) return 0;
    await deps.queue.addBulk(
      adoptable.map((o) => ({ name: o.event.type, data: o.event, opts: { jobId: `${deliveryEventJobId(o.event)}.adopted` } })),
    );
    await deps.events.removeOrphans(adoptable.map((o) => o._id));
    deps.log.info({ adopted: adoptable.length }, 'orphan delivery events queued again: their entries exist now');
    return adoptable.length;
  };
  const tick = () => {
    if (running) return;
    running = sweep()
      .catch((err: unknown) => {
        deps.log.warn({ err }, 'orphan sweep failed; the next one retries');
        return 0;
      })
      .finally(() => {
        running = null;
      });
  };
  const timer = setInterval(tick, deps.intervalMs);
  timer.unref();
  return {
    sweep: async () => {
      while (running) await running;
      return sweep();
    },
    async stop() {
      clearInterval(timer);
      if (running) await running;
    },
  };
}
