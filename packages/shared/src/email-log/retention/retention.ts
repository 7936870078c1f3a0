import type { ActivityRepository } from '../../activity.repository';
import type { EmailLogRepository } from '../repository';
import type { Logger } from '../../logger';

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
  contentRemoved: number;
  activityRemoved: number;
  durationMs: number;
}

/**
 * Removes log entries and their content sent before the cut-off, slice of time by slice
 * (repository's removeSentBefore: fewer than `batchSize` entries a slice), then the activity
 * log's old entries. Each step pauses as long as it took (`yieldFactor`), so the cleanup takes at
 * most about half of what the database can do and reads and new writes keep the rest. Idempotent:
 * a run that stops halfway is finished by the next.
 *
 * Why not a TTL index: the product keeps entries six calendar months and cleans them in one daily
 * run at 03:00 UTC (a TTL index deletes continuously, by a fixed number of seconds), and a run
 * reports what it removed.
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
  /** After each step, pause this many times as long as the step took (default 1). */
  yieldFactor?: number;
}): Promise<RetentionResult> {
  const started = Date.now();
  const cutoff = retentionCutoff(deps.now, deps.months);
  const batchSize = deps.batchSize ?? 5000;
  const pauseAfter = async (stepStarted: number) => {
    const pause = Math.max(deps.pauseMs ?? 0, (Date.now() - stepStarted) * (deps.yieldFactor ?? 1));
    if (pause > 0) await new Promise((res) => setTimeout(res, pause));
  };
  let removed = 0;
  let contentRemoved = 0;
  let stepStarted = Date.now();
  for await (const step of deps.logs.removeSentBefore(cutoff, batchSize)) {
    removed += step.removed;
    contentRemoved += step.contentRemoved;
    await pauseAfter(stepStarted);
    stepStarted = Date.now();
  }
  let activityRemoved = 0;
  for (let n = batchSize; deps.activity && n === batchSize; activityRemoved += n) {
    stepStarted = Date.now();
    n = await deps.activity.deleteBatchOlderThan(cutoff, batchSize);
    if (n === batchSize) await pauseAfter(stepStarted);
  }
  const result = { cutoff: cutoff.toISOString(), removed, contentRemoved, activityRemoved, durationMs: Date.now() - started };
  deps.log.info(result, 'retention cleanup finished');
  return result;
}
