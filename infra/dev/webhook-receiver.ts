/**
 * A real HTTP server that stands in for an application receiving Mailroom's outbound webhooks
 * (tests and benches): it records every request (raw body and headers, so a test verifies the
 * signature exactly as an integrator would) and answers with the status `respond` picks. It can
 * be stopped and started again on the same port (a receiver that is down for a while).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedWebhook {
  id: string;
  timestamp: string;
  signature: string;
  headers: Record<string, string>;
  body: string;
  /** The status this receiver answered. */
  status: number;
  at: Date;
}

export interface WebhookReceiver {
  port: number;
  /** `http://127.0.0.1:<port>/hooks` (any path is accepted). */
  url: string;
  received: ReceivedWebhook[];
  /** Chooses the answer to each request (default 200); `seen` counts earlier requests with the same webhook-id. */
  respond: (req: { id: string; body: string; seen: number }) => number;
  /** Resolves once `n` requests have been answered 2xx. */
  waitForDelivered(n: number, timeoutMs?: number): Promise<ReceivedWebhook[]>;
  /** Stops listening (open connections are cut); `start` listens again on the same port. */
  stop(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
}

export async function startWebhookReceiver(opts: { port?: number; host?: string } = {}): Promise<WebhookReceiver> {
  const host = opts.host ?? '127.0.0.1';
  const seen = new Map<string, number>();
  let server: http.Server | null = null;
  let port = opts.port ?? 0;

  const receiver: WebhookReceiver = {
    port,
    url: '',
    received: [],
    respond: () => 200,
    async waitForDelivered(n, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const ok = receiver.received.filter((r) => r.status >= 200 && r.status < 300);
        if (ok.length >= n) return ok;
        if (Date.now() > deadline) throw new Error(`receiver got ${ok.length} of ${n} deliveries in ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 25));
      }
    },
    async start() {
      const s = http.createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          const body = Buffer.concat(chunks).toString('utf8');
          const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : (v ?? '')]));
          const id = headers['webhook-id'] ?? '';
          const n = seen.get(id) ?? 0;
          seen.set(id, n + 1);
          const status = receiver.respond({ id, body, seen: n });
          receiver.received.push({
            id,
            timestamp: headers['webhook-timestamp'] ?? '',
            signature: headers['webhook-signature'] ?? '',
            headers,
            body,
            status,
            at: new Date(),
          });
          res.writeHead(status, { 'content-type': 'text/plain' }).end(status < 300 ? 'ok' : `answered ${status}`);
        });
      });
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.listen(port, host, () => resolve());
      });
      server = s;
      port = (s.address() as AddressInfo).port;
      receiver.port = port;
      receiver.url = `http://${host}:${port}/hooks`;
    },
    async stop() {
      const s = server;
      server = null;
      if (!s) return;
      await new Promise<void>((resolve) => {
        s.close(() => resolve());
        s.closeAllConnections();
      });
    },
    close: () => receiver.stop(),
  };
  await receiver.start();
  return receiver;
}
