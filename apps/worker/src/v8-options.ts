/**
 * The V8 options the worker process runs with: `pnpm start`, the tests and the benches pass
 * them on its command line; production sets them in the worker's NODE_OPTIONS (infra/README.md).
 *
 * `--max-semi-space-size=64` (MB, V8's default is 16 on 64-bit): a send holds its job, its
 * message and its outcome until the log batch it joined is written (up to 100 ms), so every
 * young-generation collection finds a few thousand sends alive and copies them. A young
 * generation four times larger collects a quarter as often, with about as many survivors each
 * time. Measured in alternated pairs against the default (docs/performance.md, 2026-12-03):
 * 0.907, 0.981 and 0.933 of the CPU an email (32 of 36 pairs below 1), for about 50 MB more RSS.
 */
export const WORKER_V8_OPTIONS: readonly string[] = ['--max-semi-space-size=64'];

/** The V8 options of a process started from `entry` (a path from the repository root): the worker's for the worker. */
export function v8OptionsFor(entry: string): readonly string[] {
  return entry === 'apps/worker/src/main.ts' ? WORKER_V8_OPTIONS : [];
}
