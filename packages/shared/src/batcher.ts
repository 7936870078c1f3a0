/**
 * Collects single calls into batches answered by one `flush` each. A batch goes when
 * `maxItems` calls wait or its oldest call has waited `maxWaitMs`, and at most one flush is in
 * flight: calls arriving meanwhile make up the next batch, which again waits for its oldest
 * call's deadline rather than going the moment the previous flush ends (a flush's fixed cost is
 * then shared by more calls; the send outcomes' batcher says what that is worth). At low load a
 * call waits at most `maxWaitMs`.
 */
export interface Batcher<T, R> {
  add(item: T): Promise<R>;
  /** Resolves once everything added so far has been flushed (without waiting for deadlines). */
  drain(): Promise<void>;
}

interface Waiting<T, R> {
  item: T;
  at: number;
  resolve: (r: R) => void;
  reject: (e: unknown) => void;
}

export function createBatcher<T, R>(
  flush: (items: T[]) => Promise<Array<R | Error>>,
  opts: { maxItems: number; maxWaitMs: number },
): Batcher<T, R> {
  const waiting: Array<Waiting<T, R>> = [];
  let timer: NodeJS.Timeout | null = null;
  let running: Promise<void> | null = null;
  let draining = 0;

  const runOne = async (batch: Array<Waiting<T, R>>) => {
    try {
      const results = await flush(batch.map((b) => b.item));
      batch.forEach((b, i) => {
        const r = results[i];
        if (r instanceof Error) b.reject(r);
        else b.resolve(r as R);
      });
    } catch (err) {
      batch.forEach((b) => b.reject(err));
    }
  };

  /** Milliseconds until the waiting calls are due as a batch (0: now). */
  const dueIn = () => (waiting.length >= opts.maxItems || draining > 0 ? 0 : Math.max(0, waiting[0]!.at + opts.maxWaitMs - Date.now()));

  const kick = () => {
    if (timer) clearTimeout(timer);
    timer = null;
    if (running || waiting.length === 0) return;
    const wait = dueIn();
    if (wait > 0) {
      timer = setTimeout(kick, wait);
      return;
    }
    running = (async () => {
      while (waiting.length > 0 && dueIn() === 0) await runOne(waiting.splice(0, opts.maxItems));
    })().finally(() => {
      running = null;
      kick();
    });
  };

  return {
    add(item) {
      return new Promise<R>((resolve, reject) => {
        waiting.push({ item, at: Date.now(), resolve, reject });
        if (waiting.length >= opts.maxItems) kick();
        else if (!running) timer ??= setTimeout(kick, opts.maxWaitMs);
      });
    },
    async drain() {
      draining++;
      try {
        while (running || waiting.length > 0) {
          if (!running) kick();
          await running;
        }
      } finally {
        draining--;
      }
    },
  };
}
