import { applyEvents, emptyEventFields, type DeliveryEvent } from '@mailroom/shared';
import { comparable, EMAIL, randomEvents, rng, SENT_AT, shuffledWithDuplicates } from './email-events.gen';

const ctx = { sentAt: SENT_AT, machineWindowMs: 2000 };

describe('the event reducer: the final entry does not depend on order or duplication', () => {
  it('when random event sets are folded in every sampled permutation with duplicates, then the entry is identical', () => {
    for (let seed = 1; seed <= 300; seed++) {
      const r = rng(seed);
      const events = randomEvents(r, 1 + r.int(8));
      const reference = comparable(applyEvents(emptyEventFields(), events, ctx));
      for (let k = 0; k < 20; k++) {
        const got = comparable(applyEvents(emptyEventFields(), shuffledWithDuplicates(r, events), ctx));
        if (JSON.stringify(got) !== JSON.stringify(reference)) {
          expect({ seed, got }).toEqual({ seed, got: reference });
        }
      }
    }
  });

  it('when three events arrive in all 6 orders, then all six entries are equal', () => {
    const r = rng(42);
    const [a, b, c] = randomEvents(r, 3) as [DeliveryEvent, DeliveryEvent, DeliveryEvent];
    const orders = [
      [a, b, c],
      [a, c, b],
      [b, a, c],
      [b, c, a],
      [c, a, b],
      [c, b, a],
    ];
    const results = orders.map((o) => JSON.stringify(comparable(applyEvents(emptyEventFields(), o, ctx))));
    expect(new Set(results).size).toBe(1);
  });

  const ev = (type: DeliveryEvent['type'], minutes: number, extra: Partial<DeliveryEvent> = {}): DeliveryEvent => {
    const at = new Date(SENT_AT.getTime() + minutes * 60_000).toISOString();
    return { id: `${type}-${minutes}-${extra.bounceType ?? ''}`, provider: 'mailroom', type, at, receivedAt: at, emailId: EMAIL, ...extra };
  };

  it('when delivered arrives after opened, then the status stays opened and the late delivery is marked', () => {
    const f = applyEvents(emptyEventFields(), [ev('opened', 5), ev('delivered', 1)], ctx);
    expect(f).toMatchObject({ status: 'opened', opens: 1, deliveredAt: new Date(SENT_AT.getTime() + 60_000) });
    expect(f.timeline.find((t) => t.type === 'delivered')).toMatchObject({ late: true, changedStatus: false });
  });

  it('when a hard bounce or complaint arrives after delivered or opened, then it changes the status', () => {
    expect(
      applyEvents(emptyEventFields(), [ev('delivered', 1), ev('opened', 2), ev('bounced', 3, { bounceType: 'hard', detail: '550' })], ctx),
    ).toMatchObject({
      status: 'bounced',
      bounceType: 'hard',
      bounceDetail: '550',
    });
    expect(applyEvents(emptyEventFields(), [ev('clicked', 3), ev('complained', 9)], ctx).status).toBe('complained');
  });

  it('when a soft bounce is followed by delivered, then the status is delivered and the soft bounce stays recorded', () => {
    const f = applyEvents(emptyEventFields(), [ev('bounced', 1, { bounceType: 'soft' }), ev('delivered', 30)], ctx);
    expect(f).toMatchObject({ status: 'delivered', bounceType: 'soft' });
  });

  it('when the same event comes twice, then nothing changes the second time', () => {
    const once = applyEvents(emptyEventFields(), [ev('opened', 5)], ctx);
    expect(applyEvents(once, [ev('opened', 5)], ctx)).toBe(once);
  });

  it('when an open comes within the machine window or from a scanner, then it is in the timeline but not counted', () => {
    const early = { ...ev('opened', 0), at: new Date(SENT_AT.getTime() + 1000).toISOString() };
    const f = applyEvents(emptyEventFields(), [early, ev('opened', 10, { machine: true }), ev('opened', 20)], ctx);
    expect(f).toMatchObject({ status: 'opened', opens: 1, openedAt: new Date(SENT_AT.getTime() + 20 * 60_000) });
    expect(f.timeline.filter((t) => t.machine)).toHaveLength(2);
    expect(applyEvents(emptyEventFields(), [early], ctx)).toMatchObject({ status: 'sent', opens: 0, openedAt: null });
  });

  it('when the entry is send_failed, then events are recorded but do not change the status', () => {
    expect(applyEvents(emptyEventFields('send_failed'), [ev('delivered', 1)], ctx).status).toBe('send_failed');
  });
});
