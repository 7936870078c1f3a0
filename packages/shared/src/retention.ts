import type { ActivityRepository } from './activity.repository';
import type { EmailLogRepository } from './email-log.repository';
import type { Logger } from './logger';

/**
 * The retention cut-off: `months` calendar months before `now`, at the same UTC time of day.
 * When the target month is shorter (31 August minus six months), the last day of that month
 * is used rather than spilling into the next one.
 */
export function retentionCutoff(now: Date, months: number): Date {
  const y = now.getUTCFullYear();
  const m = now.getUTCMonth() - months;
  const lastDay = new Date(Date.UTC(y, m + 1, 0)).getUTCDate();
  return new Date(
    Date.UTC(
      y,
      m,
      Math.min(now.getUTCDate(), lastDay),
      now.getUTCHours(),
      now.getUTCMinutes(),
      now.getUTCSeconds(),
      now.getUTCMilliseconds(),
    ),
  );
}

export interface RetentionResult {
  cutoff: string;
  removed: number;
  /** Content removed bucket by bucket; content of dropped partitions is not counted apart. */
  contentRemoved: number;
  activityRemoved: number;
  /** Whole monthly partitions dropped (email-log-partitions.ts), their entries counted in `removed`. */
  partitionsDropped: string[];
  durationMs: number;
}

/**
 * Removes log entries (and their content) sent before the cut-off, bucket by bucket, oldest
 * first (email-log-buckets.ts): a whole expired day when it is small, else hour by hour, and an
 * hour larger than `batchSize` (or the hour the cut-off falls in) `batchSize` entries at a time,
 * so that reads and new writes are never held up for long. A bucket leaves the directory only
 * once it is empty, so the run is idempotent and a run that stops halfway is finished by the next.
 */
export async function runRetention(deps: {
  logs: EmailLogRepository;
  /** The activity log follows the same retention. */
  activity?: ActivityRepository;
  log: Logger;
  now: Date;
  months: number;
  batchSize?: number;
  /** Least pause after each step (ms). */
  pauseMs?: number;
  /**
   * After each step, pause this many times as long as the step took (default 1): the cleanup
   * then takes at most about half of what the database can do, and reads and writes keep the rest.
   */
  yieldFactor?: number;
}): Promise<RetentionResult> {
  const started = Date.now();
  const cutoff = retentionCutoff(deps.now, deps.months);
  const batchSize = deps.batchSize ?? 5000;
  const cutHour = cutoff.toISOString().slice(0, 13);
  // Whole months first: a partition whose entries have all expired goes as a collection.
  const dropped = await deps.logs.dropExpiredPartitions(cutoff);
  let removed = dropped.removed;
  let contentRemoved = 0;
  let parts: string[] = [];
  const step = async (field: 'day' | 'hour', value: string, opts?: { limit: number; before?: Date }) => {
    const stepStarted = Date.now();
    const r = await deps.logs.deleteBucket(parts, field, value, opts);
    removed += r.removed;
    contentRemoved += r.contentRemoved;
    const pause = Math.max(deps.pauseMs ?? 0, (Date.now() - stepStarted) * (deps.yieldFactor ?? 1));
    if (pause > 0) await new Promise((res) => setTimeout(res, pause));
    return r.exhausted;
  };

  for (const day of await deps.logs.retentionDays(cutoff)) {
    const whole = day.day < cutHour.slice(0, 10);
    parts = day.parts;
    if (parts.length === 0) {
      // Its partitions were dropped above.
      if (whole) await deps.logs.forgetBucket(day.day);
      continue;
    }
    if (whole && day.total <= batchSize) {
      await step('day', day.day);
      await deps.logs.forgetBucket(day.day);
      continue;
    }
    for (const h of day.hours) {
      if (h.hour > cutHour) break;
      const boundary = h.hour === cutHour;
      if (!boundary && h.count <= batchSize) await step('hour', h.hour);
      else while (!(await step('hour', h.hour, { limit: batchSize, ...(boundary ? { before: cutoff } : {}) })));
      // The cut-off's own hour keeps its newer entries, and so stays in the directory.
      if (!boundary) await deps.logs.forgetBucket(day.day, h.key);
    }
    if (whole) await deps.logs.forgetBucket(day.day);
  }
  await deps.logs.forgetMonthsBefore(cutHour.slice(0, 7));

  let activityRemoved = 0;
  for (;;) {
    const n = deps.activity ? await deps.activity.deleteBatchOlderThan(cutoff, batchSize) : 0;
    activityRemoved += n;
    if (n === 0) break;
  }
  const result = {
    cutoff: cutoff.toISOString(),
    removed,
    contentRemoved,
    activityRemoved,
    partitionsDropped: dropped.parts,
    durationMs: Date.now() - started,
  };
  deps.log.info(result, 'retention cleanup finished');
  return result;
}
