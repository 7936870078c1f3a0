/**
 * Collects single calls into batches answered by one `flush` each. A batch goes when
 * `maxItems` calls wait or `maxWaitMs` after the first; while one flush runs, calls gather for
 * the next, so there is at most one flush in flight: under load batches grow instead of
 * competing writes piling up on the database (FerretDB's SQLite backend serializes writers).
 */
export interface Batcher<T, R> {
  add(item: T): Promise<R>;
  /** Resolves once everything added so far has been flushed. */
  drain(): Promise<void>;
}

interface Waiting<T, R> {
  item: T;
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

  const kick = () => {
    if (timer) clearTimeout(timer);
    timer = null;
    if (running || waiting.length === 0) return;
    running = (async () => {
      while (waiting.length > 0) {
        const batch = waiting.splice(0, opts.maxItems);
        await runOne(batch);
      }
    })().finally(() => {
      running = null;
    });
  };

  return {
    add(item) {
      return new Promise<R>((resolve, reject) => {
        waiting.push({ item, resolve, reject });
        if (waiting.length >= opts.maxItems) kick();
        else timer ??= setTimeout(kick, opts.maxWaitMs);
      });
    },
    async drain() {
      kick();
      while (running) await running;
    },
  };
}
