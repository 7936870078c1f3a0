import { entryBuckets, logBuckets, planBucketReads, type LogMonthDoc } from '@mailroom/shared';

type Days = Record<string, Record<string, number>>;
const hourDocs = new Map<string, Days>();
/** A month document, and the hour documents of its days (`n` is the day's total). */
const month = (m: string, days: Days): LogMonthDoc => {
  hourDocs.set(m, days);
  return { _id: `ws|${m}`, workspaceId: 'ws', month: m, days: Object.fromEntries(Object.entries(days).map(([d, c]) => [d, c.n!])) };
};
const hoursOf = async (day: string) => {
  const { n: _n, ...hours } = hourDocs.get(day.slice(0, 7))?.[`d${day.slice(8)}`] ?? {};
  return hours;
};
const reads = async (docs: LogMonthDoc[], range = {}, max = 100) => {
  const out: string[] = [];
  for await (const r of planBucketReads(docs, range, max, hoursOf)) out.push(`${r.field}:${r.value}:${r.count}`);
  return out;
};

describe('email-log buckets', () => {
  it('when a time is given, then its month, day and hour are taken in UTC', () => {
    expect(logBuckets('2026-11-27T23:59:59.999+02:00')).toEqual({ month: '2026-11', day: '2026-11-27', hour: '2026-11-27T21' });
    expect(entryBuckets('ws_1', '2026-11-27T00:30:00.000Z')).toEqual({
      day: '2026-11-27',
      hour: '2026-11-27T00',
      wsMonth: 'ws_1|2026-11',
      wsDay: 'ws_1|2026-11-27',
      wsHour: 'ws_1|2026-11-27T00',
    });
  });

  it('when a month is small, then it is read whole; a larger one day by day; a busy day hour by hour, newest first', async () => {
    const docs = [
      month('2026-09', { d03: { n: 40, h10: 40 }, d20: { n: 30, h08: 30 } }),
      month('2026-11', { d01: { n: 90, h09: 90 }, d02: { n: 250, h07: 100, h23: 150 }, d05: { n: 5, h00: 5 } }),
      month('2026-10', {}),
    ];
    expect(await reads(docs)).toEqual([
      'day:2026-11-05:5',
      'hour:2026-11-02T23:150',
      'hour:2026-11-02T07:100',
      'day:2026-11-01:90',
      'month:2026-09:70',
    ]);
  });

  it('when a range is given, then only its days are read, and a month read still counts the whole month', async () => {
    const docs = [month('2026-11', { d01: { n: 90, h09: 90 }, d02: { n: 30, h07: 30 } }), month('2026-10', { d31: { n: 60, h01: 60 } })];
    expect(await reads(docs, { toDay: '2026-11-01' })).toEqual(['day:2026-11-01:90', 'month:2026-10:60']);
    expect(await reads(docs, { fromDay: '2026-11-02' })).toEqual(['day:2026-11-02:30']);
    expect(await reads(docs, { toDay: '2026-10-31' })).toEqual(['month:2026-10:60']);
  });

  it('when the filter matches few of the counted entries, then later reads get coarser', async () => {
    const docs = [month('2026-11', { d02: { n: 300, h01: 300 }, d01: { n: 300, h01: 300 } })];
    let ratio = 1;
    const plan = planBucketReads(docs, {}, 100, hoursOf, () => ratio);
    expect((await plan.next()).value).toMatchObject({ field: 'hour', value: '2026-11-02T01' });
    ratio = 0.1;
    // 600 × 0.1 matches at most in the whole workspace: the rest in one read.
    expect((await plan.next()).value).toMatchObject({ field: 'before', value: '2026-11-02T00:00:00.000Z' });
    expect((await plan.next()).done).toBe(true);
  });

  it('when the whole workspace is small, then one read takes everything', async () => {
    const docs = [month('2026-11', { d02: { n: 30, h01: 30 } }), month('2026-08', { d01: { n: 30, h01: 30 } })];
    expect(await reads(docs)).toEqual(['before:2026-12-01T00:00:00.000Z:60']);
  });
});
