import type { EmailLogRepository } from '../repository';
import { HANDED_OFF_STATUSES, type EmailStatus } from '../../schemas';

/**
 * Daily numbers of the email log. The database counts per UTC day (`$match` + `$group` on
 * `$dateToString` of `sentAt`); totals and rates are folded here.
 *
 * The status of an entry is its latest one, and later statuses imply earlier ones (an opened
 * email was delivered), so the rates are computed over groups of statuses, listed as data.
 */
const DELIVERED: readonly EmailStatus[] = ['delivered', 'opened', 'clicked', 'complained'];
const OPENED: readonly EmailStatus[] = ['opened', 'clicked'];

/** rate name → [numerator statuses, denominator statuses]. */
export const EMAIL_LOG_RATES = {
  delivery: [DELIVERED, HANDED_OFF_STATUSES],
  bounce: [['bounced'], HANDED_OFF_STATUSES],
  complaint: [['complained'], HANDED_OFF_STATUSES],
  open: [OPENED, DELIVERED],
} as const satisfies Record<string, readonly [readonly EmailStatus[], readonly EmailStatus[]]>;

/**
 * The chart's series: how many of a day's emails got at least this far (sent: handed off;
 * delivered: and delivered; …), and how many ended in each problem. `failed` counts both
 * `send_failed` (never left) and `failed` (the provider gave up).
 */
export const EMAIL_LOG_FUNNEL = {
  sent: HANDED_OFF_STATUSES,
  delivered: DELIVERED,
  opened: OPENED,
  clicked: ['clicked'],
  bounced: ['bounced'],
  complained: ['complained'],
  failed: ['send_failed', 'failed'],
} as const satisfies Record<string, readonly EmailStatus[]>;

type Counts = Record<string, number>;

export interface EmailLogStatsBucket {
  total: number;
  byStatus: Counts;
  byType: Counts;
  bySendMethod: Counts;
  /** Fractions between 0 and 1 (4 decimals); null when the denominator is 0. */
  rates: Record<keyof typeof EMAIL_LOG_RATES, number | null>;
  /** See {@link EMAIL_LOG_FUNNEL}. */
  funnel: Record<keyof typeof EMAIL_LOG_FUNNEL, number>;
}

export interface EmailLogStats {
  since: string;
  until: string;
  days: Array<{ day: string } & EmailLogStatsBucket>;
  totals: EmailLogStatsBucket;
}

const emptyBucket = (): Omit<EmailLogStatsBucket, 'rates' | 'funnel'> => ({ total: 0, byStatus: {}, byType: {}, bySendMethod: {} });

function withRates(b: Omit<EmailLogStatsBucket, 'rates' | 'funnel'>): EmailLogStatsBucket {
  const sum = (statuses: readonly string[]) => statuses.reduce((n, s) => n + (b.byStatus[s] ?? 0), 0);
  const rates = {} as EmailLogStatsBucket['rates'];
  for (const [name, [num, den]] of Object.entries(EMAIL_LOG_RATES) as Array<
    [keyof typeof EMAIL_LOG_RATES, readonly [readonly string[], readonly string[]]]
  >) {
    const d = sum(den);
    rates[name] = d === 0 ? null : Math.round((sum(num) / d) * 10_000) / 10_000;
  }
  const funnel = Object.fromEntries(
    Object.entries(EMAIL_LOG_FUNNEL).map(([name, statuses]) => [name, sum(statuses)]),
  ) as EmailLogStatsBucket['funnel'];
  return { ...b, rates, funnel };
}

/** Counts by status, type and send method per UTC day of `sentAt` in [since, until] (YYYY-MM-DD). */
export async function emailLogStats(logs: EmailLogRepository, workspaceId: string, since: string, until: string): Promise<EmailLogStats> {
  const days = { since, until };
  const [byStatus, byType, bySendMethod] = await Promise.all([
    logs.countByDay(workspaceId, 'status', days),
    logs.countByDay(workspaceId, 'type', days),
    logs.countByDay(workspaceId, 'sendMethod', days),
  ]);
  const perDay = new Map<string, Omit<EmailLogStatsBucket, 'rates' | 'funnel'>>();
  const totals = emptyBucket();
  const add = (rows: typeof byStatus, field: 'byStatus' | 'byType' | 'bySendMethod') => {
    for (const r of rows) {
      let b = perDay.get(r.day);
      if (!b) perDay.set(r.day, (b = emptyBucket()));
      b[field][r.key] = (b[field][r.key] ?? 0) + r.count;
      totals[field][r.key] = (totals[field][r.key] ?? 0) + r.count;
      // Every entry has exactly one status, so the status rows give the totals.
      if (field === 'byStatus') {
        b.total += r.count;
        totals.total += r.count;
      }
    }
  };
  add(byStatus, 'byStatus');
  add(byType, 'byType');
  add(bySendMethod, 'bySendMethod');
  const list = [...perDay.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([day, b]) => ({ day, ...withRates(b) }));
  return { since, until, days: list, totals: withRates(totals) };
}
