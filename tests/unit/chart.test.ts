/**
 * The page's chart module (apps/api/src/web/chart.js, plain browser JavaScript): its arithmetic
 * here, its drawing in Chromium (tests/e2e/email-log-content-chart.test.ts).
 */
const chart = require('../../apps/api/src/web/chart.js') as {
  ticks(max: number): number[];
  daysBetween(since: string, until: string): string[];
  chartRows(stats: unknown): Array<{ day: string; values: Record<string, number> }>;
  percent(rate: number | null): string;
  SERIES: Array<[string, string]>;
};

describe('chart.js', () => {
  it('when the largest figure is given, then the axis has round whole-number ticks from 0 past it', () => {
    expect(chart.ticks(0)).toEqual([0, 1]);
    expect(chart.ticks(1)).toEqual([0, 1]);
    expect(chart.ticks(3)).toEqual([0, 1, 2, 3]);
    expect(chart.ticks(7)).toEqual([0, 2, 4, 6, 8]);
    expect(chart.ticks(15)).toEqual([0, 5, 10, 15]);
    expect(chart.ticks(152)).toEqual([0, 50, 100, 150, 200]);
    expect(chart.ticks(98_765)).toEqual([0, 50_000, 100_000]);
    for (let max = 1; max < 2000; max += 7) {
      const t = chart.ticks(max);
      expect(t[t.length - 1]).toBeGreaterThanOrEqual(max);
      expect(t.length).toBeLessThanOrEqual(6);
      expect(t.every(Number.isInteger)).toBe(true);
    }
  });

  it('when a range crosses a month and a year, then every UTC day is there once', () => {
    expect(chart.daysBetween('2026-12-30', '2027-01-02')).toEqual(['2026-12-30', '2026-12-31', '2027-01-01', '2027-01-02']);
    expect(chart.daysBetween('2026-11-01', '2026-11-30')).toHaveLength(30);
    expect(chart.daysBetween('2026-11-02', '2026-11-01')).toEqual([]);
  });

  it('when the stats skip days, then the rows have zeros for them, in the series order', () => {
    const funnel = { sent: 3, delivered: 2, opened: 1, clicked: 0, bounced: 1, complained: 0, failed: 4 };
    const rows = chart.chartRows({ since: '2026-11-01', until: '2026-11-03', days: [{ day: '2026-11-02', funnel }] });
    expect(rows.map((r) => r.day)).toEqual(['2026-11-01', '2026-11-02', '2026-11-03']);
    expect(rows[1]!.values).toEqual(funnel);
    expect(Object.values(rows[0]!.values)).toEqual(chart.SERIES.map(() => 0));
    expect(Object.keys(rows[2]!.values)).toEqual(chart.SERIES.map(([k]) => k));
  });

  it('when a rate is shown, then it is a percentage with one decimal (two below 10 %), or a dash without data', () => {
    expect(chart.percent(null)).toBe('—');
    expect(chart.percent(0)).toBe('0.0%');
    expect(chart.percent(0.0123)).toBe('1.23%');
    expect(chart.percent(0.52)).toBe('52.0%');
    expect(chart.percent(1)).toBe('100.0%');
  });
});
