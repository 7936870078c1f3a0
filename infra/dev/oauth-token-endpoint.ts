/**
 * A tiny OAuth2 token endpoint for XOAUTH2 tests (the refresh_token grant), beside the SMTP
 * sink in infra/dev/smtp-sink.ts, which re-exports it.
 */
import http from 'node:http';
import type net from 'node:net';

export interface TokenEndpointOptions {
  accessToken: string;
  /** when set, only this refresh token is accepted */
  expectRefreshToken?: string;
  /** when set, only this client_id is accepted */
  clientId?: string;
}

export interface TokenEndpoint {
  url: string;
  /** number of requests received */
  readonly calls: number;
  close(): Promise<void>;
}

/** Minimal OAuth2 token endpoint for the refresh_token grant (form-encoded POST). */
export async function startTokenEndpoint(opts: TokenEndpointOptions): Promise<TokenEndpoint> {
  let calls = 0;
  const server = http.createServer((req, res) => {
    calls++;
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      const form = new URLSearchParams(body);
      const ok =
        req.method === 'POST' &&
        form.get('grant_type') === 'refresh_token' &&
        !!form.get('refresh_token') &&
        (opts.expectRefreshToken === undefined || form.get('refresh_token') === opts.expectRefreshToken) &&
        (opts.clientId === undefined || form.get('client_id') === opts.clientId);
      const payload = ok ? { access_token: opts.accessToken, token_type: 'Bearer', expires_in: 3600 } : { error: 'invalid_grant' };
      res.writeHead(ok ? 200 : 400, { 'content-type': 'application/json' });
      res.end(JSON.stringify(payload));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/token`,
    get calls() {
      return calls;
    },
    close() {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
