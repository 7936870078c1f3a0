/**
 * A local Redis Cluster of three masters for tests: `redis-server --cluster-enabled yes` on three
 * free ports, joined with `redis-cli --cluster create`. `url` is the comma-separated seed list
 * that REDIS_URL accepts for a cluster.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import path from 'node:path';
import { Redis } from 'ioredis';
import { findExecutable, getFreePort, makeTempDir, removeTempDir, ServerProcess, sleep } from './process';

const run = promisify(execFile);

export interface RunningRedisCluster {
  url: string;
  ports: number[];
  stop(): Promise<void>;
}

export async function startRedisCluster(nodes = 3): Promise<RunningRedisCluster> {
  const server = findExecutable('redis-server', ['/usr/bin/redis-server']);
  const cli = findExecutable('redis-cli', ['/usr/bin/redis-cli']);
  if (!server || !cli) throw new Error('redis-server and redis-cli are needed (apt-get install redis-server)');
  const dir = makeTempDir('mailroom-redis-cluster-');
  const procs: ServerProcess[] = [];
  const ports: number[] = [];
  const stop = async () => {
    await Promise.all(procs.map((p) => p.stop('SIGTERM')));
    removeTempDir(dir);
  };
  try {
    for (let i = 0; i < nodes; i++) {
      const port = await getFreePort();
      const args = [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        path.join(dir, `nodes-${port}.conf`),
        '--cluster-node-timeout',
        '2000',
        '--save',
        '',
        '--appendonly',
        'no',
        '--maxmemory-policy',
        'noeviction',
        '--dir',
        dir,
      ];
      const p = new ServerProcess(`redis-cluster :${port}`, server, args);
      procs.push(p);
      ports.push(port);
      await p.waitForLine('Ready to accept connections', 15_000);
    }
    await run(cli, ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes']);
    // Wait until every node agrees the cluster is up.
    const deadline = Date.now() + 20_000;
    for (const port of ports) {
      const r = new Redis({ port, host: '127.0.0.1', lazyConnect: true });
      try {
        await r.connect();
        while (!/cluster_state:ok/.test(String(await r.cluster('INFO')))) {
          if (Date.now() > deadline) throw new Error(`Redis Cluster node ${port} did not reach cluster_state:ok`);
          await sleep(100);
        }
      } finally {
        r.disconnect();
      }
    }
    return { url: ports.map((p) => `redis://127.0.0.1:${p}`).join(','), ports, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
