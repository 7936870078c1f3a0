import { createBatcher } from '@mailroom/shared';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A batcher whose flush records its batches and takes `flushMs`; item "bad" fails alone. */
function recorder(opts: { maxItems: number; maxWaitMs: number; flushMs?: number }) {
  const batches: number[][] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const b = createBatcher<number, number>(async (items) => {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    batches.push(items);
    await sleep(opts.flushMs ?? 0);
    inFlight--;
    return items.map((x) => (x < 0 ? new Error(`bad ${x}`) : x * 2));
  }, opts);
  return { b, batches, maxInFlight: () => maxInFlight };
}

describe('createBatcher', () => {
  it('when maxItems calls wait, then they go at once as one batch', async () => {
    const { b, batches } = recorder({ maxItems: 3, maxWaitMs: 10_000 });
    const started = Date.now();
    expect(await Promise.all([1, 2, 3].map((x) => b.add(x)))).toEqual([2, 4, 6]);
    expect(batches).toEqual([[1, 2, 3]]);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('when fewer calls come, then they go once the oldest has waited maxWaitMs', async () => {
    const { b, batches } = recorder({ maxItems: 100, maxWaitMs: 80 });
    const started = Date.now();
    const first = b.add(1);
    await sleep(30);
    const second = b.add(2);
    await Promise.all([first, second]);
    const took = Date.now() - started;
    expect(batches).toEqual([[1, 2]]);
    expect(took).toBeGreaterThanOrEqual(75);
    expect(took).toBeLessThan(1000);
  });

  it('when calls arrive during a flush, then the next batch still waits for its own deadline, one flush at a time', async () => {
    const { b, batches, maxInFlight } = recorder({ maxItems: 1000, maxWaitMs: 60, flushMs: 10 });
    const all: Array<Promise<number>> = [];
    const started = Date.now();
    // ~300 ms of calls every 2 ms (longer on a busy machine): flushes end long before the next batch is due.
    for (let i = 0; i < 150; i++) {
      all.push(b.add(i));
      await sleep(2);
    }
    const calling = Date.now() - started;
    await Promise.all(all);
    expect(maxInFlight()).toBe(1);
    expect(batches.flat()).toEqual(Array.from({ length: 150 }, (_, i) => i));
    // Each batch waits 60 ms for its oldest call, so the calls' span holds at most one batch per
    // 60 ms (and the last, and one for timer jitter); without the deadline each batch would hold only the calls of one 10 ms
    // flush, about one batch per 10 ms.
    expect(batches.length).toBeLessThanOrEqual(Math.floor(calling / 60) + 2);
    expect(batches.length).toBeLessThan(calling / 20);
  });

  it('when one item fails, then only its call rejects', async () => {
    const { b } = recorder({ maxItems: 3, maxWaitMs: 10 });
    const r = await Promise.allSettled([b.add(1), b.add(-1), b.add(3)]);
    expect(r.map((x) => x.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((r[1] as PromiseRejectedResult).reason.message).toBe('bad -1');
  });

  it('when drained, then waiting calls go without waiting for their deadline', async () => {
    const { b, batches } = recorder({ maxItems: 100, maxWaitMs: 60_000 });
    const p = [b.add(1), b.add(2)];
    const started = Date.now();
    await b.drain();
    expect(await Promise.all(p)).toEqual([2, 4]);
    expect(batches).toEqual([[1, 2]]);
    expect(Date.now() - started).toBeLessThan(1000);
  });
});
