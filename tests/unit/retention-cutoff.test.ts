import { retentionCutoff } from '@mailroom/shared';

describe('retentionCutoff (six calendar months)', () => {
  const cut = (iso: string, months = 6) => retentionCutoff(new Date(iso), months).toISOString();

  it('when the day exists six months back, then the cut-off is the same day and time', () => {
    expect(cut('2026-11-27T03:00:00.000Z')).toBe('2026-05-27T03:00:00.000Z');
    expect(cut('2026-07-15T12:34:56.789Z')).toBe('2026-01-15T12:34:56.789Z');
  });

  it('when the target month is shorter, then the last day of that month is used', () => {
    expect(cut('2026-08-31T03:00:00.000Z')).toBe('2026-02-28T03:00:00.000Z');
    expect(cut('2028-08-31T03:00:00.000Z')).toBe('2028-02-29T03:00:00.000Z'); // leap year
    expect(cut('2026-12-31T03:00:00.000Z')).toBe('2026-06-30T03:00:00.000Z');
  });

  it('when the cut-off crosses a year, then the year changes', () => {
    expect(cut('2026-03-31T00:00:00.000Z')).toBe('2025-09-30T00:00:00.000Z');
    expect(cut('2026-01-01T00:00:00.000Z')).toBe('2025-07-01T00:00:00.000Z');
  });

  it('when RETENTION_MONTHS differs, then it is honoured', () => {
    expect(cut('2026-11-27T03:00:00.000Z', 1)).toBe('2026-10-27T03:00:00.000Z');
    expect(cut('2026-11-27T03:00:00.000Z', 12)).toBe('2025-11-27T03:00:00.000Z');
  });
});
