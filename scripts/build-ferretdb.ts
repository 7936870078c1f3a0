/** Builds (or finds cached) the FerretDB binary: `pnpm exec tsx scripts/build-ferretdb.ts`. Prints its path. */
import { ensureFerretdbBinary } from '../infra/dev/ferretdb-build';

ensureFerretdbBinary().then(
  (bin) => {
    process.stdout.write(`${bin}\n`);
  },
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
