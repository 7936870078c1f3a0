/** Small helpers shared by the benchmark scripts: flags, percentiles, timestamped output. */

/** `--name=value` from the command line, or `dflt`. */
export const arg = (name: string, dflt: string): string =>
  process.argv
    .find((a) => a.startsWith(`--${name}=`))
    ?.split('=')
    .slice(1)
    .join('=') ?? dflt;

/** The p-th percentile (nearest rank) of `xs`. */
export function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? NaN;
}

export const say = (msg: string): void => {
  process.stdout.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
};

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
