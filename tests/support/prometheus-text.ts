/**
 * A strict reader of Prometheus' text exposition format (what a scraper parses), for tests:
 * every sample line must be `name{label="value",…} number`, every metric announced once by
 * `# HELP` and `# TYPE` before its samples.
 */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Exposition {
  samples: Sample[];
  types: Map<string, string>;
  /** The value of the one sample with this name and (a superset of) these labels; 0 when there is none. */
  value(name: string, labels?: Record<string, string>): number;
}

// Values as Go's ParseFloat reads them (what Prometheus uses): NaN and Inf in any case (prom-client writes `Nan`).
const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (-?[0-9.e+-]+|nan|[+-]?inf)(?: \d+)?$/i;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?/gy;

export function parseExposition(text: string): Exposition {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  const helps = new Set<string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const meta = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (meta) {
      const [, kind, name, rest] = meta;
      const seen = kind === 'HELP' ? helps : types;
      if (seen.has(name!)) throw new Error(`${kind} of ${name} twice`);
      if (kind === 'HELP') helps.add(name!);
      else types.set(name!, rest!);
      continue;
    }
    const m = SAMPLE.exec(line);
    if (!m) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    if (m[3]) {
      LABEL.lastIndex = 0;
      let consumed = 0;
      for (let l = LABEL.exec(m[3]); l; l = LABEL.exec(m[3])) {
        labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_x, c: string) => (c === 'n' ? '\n' : c));
        consumed = LABEL.lastIndex;
      }
      if (consumed !== m[3].length) throw new Error(`bad labels: ${line}`);
    }
    const family = m[1]!.replace(/_(bucket|sum|count|total)$/, '');
    if (!types.has(m[1]!) && !types.has(family)) throw new Error(`sample before its TYPE: ${line}`);
    samples.push({ name: m[1]!, labels, value: Number(m[4]) });
  }
  return {
    samples,
    types,
    value(name, want = {}) {
      const hits = samples.filter((s) => s.name === name && Object.entries(want).every(([k, v]) => s.labels[k] === v));
      if (hits.length > 1) throw new Error(`${hits.length} samples of ${name} match ${JSON.stringify(want)}`);
      return hits[0]?.value ?? 0;
    },
  };
}
