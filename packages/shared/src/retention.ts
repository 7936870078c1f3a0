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
  contentRemoved: number;
  activityRemoved: number;
  durationMs: number;
}

/**
 * Removes log entries (and their content) sent before the cut-off, in bounded batches so that
 * reads and new writes are never blocked for long. Idempotent and resumable: a run that stops
 * halfway simply leaves fewer entries for the next run.
 */
export async function runRetention(deps: {
  logs: EmailLogRepository;
  /** The activity log follows the same retention. */
  activity?: ActivityRepository;
  log: Logger;
  now: Date;
  months: number;
  batchSize?: number;
  /** Pause between batches, giving way to other work (ms). */
  pauseMs?: number;
}): Promise<RetentionResult> {
  const started = Date.now();
  const cutoff = retentionCutoff(deps.now, deps.months);
  const batchSize = deps.batchSize ?? 1000;
  let removed = 0;
  for (;;) {
    const n = await deps.logs.deleteBatchOlderThan(cutoff, batchSize);
    removed += n;
    if (n === 0) break;
    if (deps.pauseMs) await new Promise((r) => setTimeout(r, deps.pauseMs));
  }
  let contentRemoved = 0;
  for (;;) {
    const n = await deps.logs.deleteContentOlderThan(cutoff, batchSize);
    contentRemoved += n;
    if (n === 0) break;
  }
  let activityRemoved = 0;
  for (;;) {
    const n = deps.activity ? await deps.activity.deleteBatchOlderThan(cutoff, batchSize) : 0;
    activityRemoved += n;
    if (n === 0) break;
  }
  const result = { cutoff: cutoff.toISOString(), removed, contentRemoved, activityRemoved, durationMs: Date.now() - started };
  deps.log.info(result, 'retention cleanup finished');
  return result;
}
