/** Jest global teardown: stops the servers tests/global-setup.ts started (external ones are left alone). */
import type {} from './global-setup'; // brings in the globalThis.__MAILROOM_TEST_SERVERS__ type

export default async function globalTeardown(): Promise<void> {
  const servers = globalThis.__MAILROOM_TEST_SERVERS__;
  globalThis.__MAILROOM_TEST_SERVERS__ = undefined;
  if (!servers) return;
  const results = await Promise.allSettled([servers.redis?.stop(), servers.mongo?.stop()]);
  for (const r of results) {
    if (r.status === 'rejected') process.stderr.write(`[mailroom] stopping a test server failed: ${String(r.reason)}\n`);
  }
}
