import type { DeliveryEvent, EventFields } from '@mailroom/shared';
import { seededRandom } from '../../infra/dev/seeded-random';

/** Random delivery events for the order-independence property tests (unit and repository). */

/** A seeded generator (infra/dev/seeded-random.ts), so a failing case can be replayed from its seed. */
export function rng(seed: number) {
  const next = seededRandom(seed);
  return { next, int: (n: number) => Math.floor(next() * n), pick: <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]! };
}

export const SENT_AT = new Date('2026-03-01T10:00:00.000Z');
export const EMAIL = 'em_01KAAAAAAAAAAAAAAAAAAAAAAA';
const TYPES = ['delivered', 'delivery_delayed', 'opened', 'clicked', 'bounced', 'complained', 'failed'] as const;

export function randomEvents(r: ReturnType<typeof rng>, n: number): DeliveryEvent[] {
  return Array.from({ length: n }, (_, i) => {
    const type = r.pick(TYPES);
    // Some events share a time, to exercise the tie-breaks.
    const at = new Date(SENT_AT.getTime() + r.int(6) * 1500 + r.int(3) * 60_000).toISOString();
    return {
      id: `ev${i}-${r.int(1e9)}`,
      provider: r.pick(['mailroom', 'sendgrid', 'tracking'] as const),
      type,
      at,
      receivedAt: at,
      emailId: EMAIL,
      ...(type === 'bounced'
        ? { bounceType: r.pick(['hard', 'soft'] as const), detail: r.pick(['550 5.1.1 unknown', '552 mailbox full', '554 blocked']) }
        : {}),
      ...(type === 'failed' ? { detail: r.pick(['dropped', 'invalid']) } : {}),
      ...(type === 'clicked' ? { url: r.pick(['https://a.test/', 'https://b.test/x']) } : {}),
      ...((type === 'opened' || type === 'clicked') && r.next() < 0.2 ? { machine: true } : {}),
    };
  });
}

/** A random order with random duplicates of every event. */
export function shuffledWithDuplicates<T>(r: ReturnType<typeof rng>, xs: readonly T[]): T[] {
  const out = [...xs, ...xs.filter(() => r.next() < 0.5), ...xs.filter(() => r.next() < 0.2)];
  for (let i = out.length - 1; i > 0; i--) {
    const j = r.int(i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** Everything but the flags that by definition describe arrival order (`late`, `changedStatus`) and the id log's order. */
export function comparable(f: Partial<EventFields>) {
  return {
    ...f,
    timeline: (f.timeline ?? []).map(({ late: _l, changedStatus: _c, ...rest }) => rest),
    eventIds: [...(f.eventIds ?? [])].sort(),
  };
}
