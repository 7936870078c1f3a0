import { lookup as dnsLookup } from 'node:dns/promises';
import http from 'node:http';
import https from 'node:https';
import ipaddr from 'ipaddr.js';
import { RequestFilteringHttpAgent, RequestFilteringHttpsAgent } from 'request-filtering-agent';
import { Webhook } from 'standardwebhooks';

/**
 * Where outbound webhooks may go (SSRF): a target whose host resolves to a loopback, private,
 * link-local (cloud metadata, 169.254.169.254) or otherwise non-public address is refused when it
 * is registered and again at each delivery (DNS can change: the delivery's own connection goes
 * through request-filtering-agent, which checks the address it actually connects to), unless
 * WEBHOOK_TARGETS_ALLOW_PRIVATE. Production also requires https under the same flag.
 */
export interface TargetPolicy {
  allowPrivateTargets: boolean;
  requireHttps: boolean;
}

/** A target refused by the policy: permanent, never retried into. */
export class WebhookTargetError extends Error {
  override name = 'WebhookTargetError';
}

/** Why an address may not be a target (null: a public unicast address). The same rule as request-filtering-agent's. */
export function forbiddenAddressReason(address: string): string | null {
  if (!ipaddr.isValid(address)) return `${address} is not an IP address`;
  const range = ipaddr.process(address).range();
  return range === 'unicast' ? null : `${address} is a ${range} address`;
}

/** Checks the URL's scheme and, unless private targets are allowed, every address its host resolves to. */
export async function checkWebhookTarget(raw: string, policy: TargetPolicy): Promise<void> {
  const url = schemeChecked(raw, policy);
  if (policy.allowPrivateTargets) return;
  const host = url.hostname.replace(/^\[|\]$/g, '');
  let addresses: Array<{ address: string }>;
  try {
    addresses = await dnsLookup(host, { all: true });
  } catch (err) {
    throw new WebhookTargetError(`${host} does not resolve (${(err as NodeJS.ErrnoException).code ?? 'lookup failed'})`);
  }
  for (const { address } of addresses) {
    const reason = forbiddenAddressReason(address);
    if (reason) throw new WebhookTargetError(`${host} resolves to ${reason}; private targets are not allowed`);
  }
}

function schemeChecked(raw: string, policy: TargetPolicy): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new WebhookTargetError('not a URL');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new WebhookTargetError('must be an http:// or https:// URL');
  if (url.protocol === 'http:' && policy.requireHttps) throw new WebhookTargetError('must be an https:// URL in production');
  return url;
}

export interface PostResult {
  /** The receiver's status; null when it never answered (refused target, timeout, connection error). */
  statusCode: number | null;
  durationMs: number;
  error: string | null;
  /** The target was refused by the policy (no request left). */
  refused: boolean;
}

/** Signs and posts messages; one per process (its agents keep connections alive). */
export interface WebhookPoster {
  post(
    target: { url: string; secrets: ReadonlyArray<{ secret: string; until: number | null }> },
    message: { id: string; body: string },
  ): Promise<PostResult>;
  close(): void;
}

/** `webhook-signature`: one `v1,<base64>` per secret still signing, separated by spaces (Standard Webhooks). */
export function signatureHeader(
  secrets: ReadonlyArray<{ secret: string; until: number | null }>,
  id: string,
  at: Date,
  body: string,
): string {
  return secrets
    .filter((s) => s.until === null || s.until > at.getTime())
    .map((s) => new Webhook(s.secret).sign(id, at, body))
    .join(' ');
}

const RESPONSE_SNIPPET = 300;

export function createWebhookPoster(policy: TargetPolicy, opts: { timeoutMs: number; userAgent?: string }): WebhookPoster {
  const filter = { allowPrivateIPAddress: policy.allowPrivateTargets, allowMetaIPAddress: false, keepAlive: true, maxSockets: 50 };
  const agents = { http: new RequestFilteringHttpAgent(filter), https: new RequestFilteringHttpsAgent(filter) };

  return {
    async post(target, message) {
      const started = performance.now();
      const done = (r: Omit<PostResult, 'durationMs'>): PostResult => ({ ...r, durationMs: Math.round(performance.now() - started) });
      let url: URL;
      try {
        url = schemeChecked(target.url, policy);
      } catch (err) {
        return done({ statusCode: null, error: (err as Error).message, refused: true });
      }
      const at = new Date();
      const headers = {
        'content-type': 'application/json',
        'user-agent': opts.userAgent ?? 'Mailroom-Webhooks/1',
        'webhook-id': message.id,
        'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
        'webhook-signature': signatureHeader(target.secrets, message.id, at, message.body),
        'content-length': String(Buffer.byteLength(message.body)),
      };
      return new Promise<PostResult>((resolve) => {
        const client = url.protocol === 'https:' ? https : http;
        const req = client.request(
          url,
          {
            method: 'POST',
            headers,
            agent: url.protocol === 'https:' ? agents.https : agents.http,
            signal: AbortSignal.timeout(opts.timeoutMs),
          },
          (res) => {
            let snippet = '';
            res.setEncoding('utf8');
            res.on('data', (chunk: string) => {
              if (snippet.length < RESPONSE_SNIPPET) snippet += chunk.slice(0, RESPONSE_SNIPPET - snippet.length);
            });
            res.on('end', () => {
              const code = res.statusCode ?? 0;
              const ok = code >= 200 && code < 300;
              resolve(done({ statusCode: code, error: ok ? null : `HTTP ${code}${snippet ? `: ${snippet}` : ''}`, refused: false }));
            });
            res.on('error', (err) => resolve(done({ statusCode: res.statusCode ?? null, error: err.message, refused: false })));
          },
        );
        req.on('error', (err: NodeJS.ErrnoException) => {
          const refused = /is not allowed/.test(err.message);
          const message =
            err.name === 'AbortError' || err.name === 'TimeoutError'
              ? `no answer within ${opts.timeoutMs} ms`
              : `${err.code ?? err.name}: ${err.message}`;
          resolve(done({ statusCode: null, error: refused ? `refused: ${err.message}` : message, refused }));
        });
        req.end(message.body);
      });
    },
    close() {
      agents.http.destroy();
      agents.https.destroy();
    },
  };
}
