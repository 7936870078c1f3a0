/**
 * Reads a V8 CPU profile (`--cpu-prof`; the benches write one a process with
 * `BENCH_CPU_PROF=<dir>`, the main thread's is `CPU.*.<pid>.0.001.cpuprofile`) and prints where
 * its time went, in µs per unit of work (`<units>`: the emails or requests the process handled,
 * warm-up batches included):
 *
 *   pnpm exec tsx bench/cpu-profile.ts self    <profile> <units> [--by=package|function] [--top=40]
 *   pnpm exec tsx bench/cpu-profile.ts incl    <profile> <units> <regex>   inclusive time of matching frames
 *   pnpm exec tsx bench/cpu-profile.ts under   <profile> <units> <regex> [--depth=2]   what a matching frame calls
 *   pnpm exec tsx bench/cpu-profile.ts callers <profile> <units> <regex> [--depth=6]   the stacks into a matching frame
 *
 * A frame is `function@file` (node_modules paths shortened to the package). V8 attributes an
 * inlined function's time to its caller, so self time of a small function may sit one frame up.
 */
import { readFileSync } from 'node:fs';
import { arg } from './bench-kit';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const [command, file, unitsArg, pattern] = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const units = Number(unitsArg);
if (!command || !file || !(units > 0)) {
  console.error('usage: cpu-profile.ts self|incl|under|callers <profile> <units> [regex] (see the file header)');
  process.exit(2);
}

const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parentOf = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parentOf.set(c, n.id);

const PACKAGE = /node_modules\/\.pnpm\/[^/]+\/node_modules\/((?:@[^/]+\/)?[^/]+)/;
const packageOf = (url: string) => PACKAGE.exec(url)?.[1] ?? url.replace(/^file:\/\/.*?\/(apps|packages|bench|infra)\//, '$1/');
const functionOf = (n: ProfileNode) => n.callFrame.functionName || '(anon)';
const frame = (n: ProfileNode) => `${functionOf(n)}@${packageOf(n.callFrame.url)}`;

/** Each sample's stack, root first, with the time it stands for. */
function* stacks(): Generator<{ stack: ProfileNode[]; us: number }> {
  for (let i = 0; i < profile.samples.length; i++) {
    const stack: ProfileNode[] = [];
    for (let id: number | undefined = profile.samples[i]; id !== undefined; id = parentOf.get(id)) stack.push(byId.get(id)!);
    yield { stack: stack.reverse(), us: profile.timeDeltas[i] ?? 0 };
  }
}

/** Adds up time by key; a sample's keys are counted once each. */
function tally(keysOf: (stack: ProfileNode[]) => Iterable<string>, top = Number(arg('top', '40'))): void {
  const sums = new Map<string, number>();
  let total = 0;
  let idle = 0;
  for (const { stack, us } of stacks()) {
    total += us;
    if (functionOf(stack.at(-1)!) === '(idle)') idle += us;
    for (const k of new Set(keysOf(stack))) sums.set(k, (sums.get(k) ?? 0) + us);
  }
  console.log(`${(total / units).toFixed(0)} µs a unit in the profile, ${((total - idle) / units).toFixed(0)} of them busy`);
  for (const [k, us] of [...sums].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${(us / units).toFixed(1).padStart(8)}  ${k}`);
}

const match = new RegExp(pattern ?? '.');
const depth = Number(arg('depth', command === 'callers' ? '6' : '2'));
switch (command) {
  case 'self': {
    const byFunction = arg('by', 'package') === 'function';
    tally((stack) => {
      const leaf = stack.at(-1)!;
      if (!leaf.callFrame.url) return [`${functionOf(leaf)}@(native)`];
      return [byFunction ? frame(leaf) : packageOf(leaf.callFrame.url)];
    });
    break;
  }
  case 'incl':
    tally((stack) => stack.map(frame).filter((f) => match.test(f)));
    break;
  case 'under':
    tally((stack) => {
      const at = stack.findIndex((n) => match.test(frame(n)));
      if (at < 0) return [];
      return [
        stack
          .slice(at + 1, at + 1 + depth)
          .map(frame)
          .join(' > ') || '(self)',
      ];
    }, 25);
    break;
  case 'callers':
    tally((stack) => (match.test(frame(stack.at(-1)!)) ? [stack.slice(-depth).reverse().map(frame).join(' < ')] : []), 15);
    break;
  default:
    console.error(`unknown command ${command}`);
    process.exit(2);
}
