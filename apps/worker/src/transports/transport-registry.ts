import nodemailer, { type Transporter } from 'nodemailer';
import type SMTPPool from 'nodemailer/lib/smtp-pool';
import {
  createVersionReader,
  workspaceVersionKey,
  type Config,
  type CustomTransportSettings,
  type EmailSettingsRepository,
  type Logger,
  type RedisClient as Redis,
} from '@mailroom/shared';
import { installFinalDotGate } from './final-dot-gate';
import { parseSmtpUrl, type SmtpEndpoint } from './smtp-url';

export type TransportKind = 'managed' | 'custom';

export interface ResolvedTransport {
  kind: TransportKind;
  from: string;
  transporter: Transporter<SMTPPool.SentMessageInfo>;
}

/**
 * Pooled nodemailer transports: one for the managed relay, one per workspace custom setting.
 * A workspace's settings are cached against a version counter in Redis that the API bumps on
 * every change, so a fixed SMTP setting takes effect on the next send without a database read
 * per email.
 */
export interface TransportRegistry {
  resolve(workspaceId: string): Promise<ResolvedTransport>;
  close(): Promise<void>;
}

const CLOSE_GRACE_MS = 30_000;

export function createTransportRegistry(deps: {
  config: Config;
  settings: EmailSettingsRepository;
  redis: Redis;
  log: Logger;
}): TransportRegistry {
  const { config, settings, redis, log } = deps;
  const s = config.send;
  const poolOptions = {
    pool: true as const,
    maxConnections: s.poolMaxConnections,
    maxMessages: 1000,
    connectionTimeout: s.connectionTimeoutMs,
    greetingTimeout: s.greetingTimeoutMs,
    socketTimeout: s.socketTimeoutMs,
    logger: false,
    disableFileAccess: true,
    disableUrlAccess: true,
  };
  const build = (endpoint: SmtpEndpoint, extra: Record<string, unknown> = {}) => {
    const transporter = nodemailer.createTransport({
      ...poolOptions,
      host: endpoint.host,
      port: endpoint.port,
      secure: endpoint.secure,
      ...(endpoint.user ? { auth: { user: endpoint.user, pass: endpoint.pass ?? '' } } : {}),
      ...extra,
    } as SMTPPool.Options);
    // The hand-off mark goes in right before the final dot of DATA (send-email.worker.ts).
    installFinalDotGate(transporter);
    return transporter;
  };

  const managed: ResolvedTransport = {
    kind: 'managed',
    from: config.managed.from,
    transporter: build(parseSmtpUrl(config.managed.smtpUrl), config.send.ignoreTls ? { ignoreTLS: true } : {}),
  };

  const buildCustom = (c: CustomTransportSettings): ResolvedTransport => {
    if (c.kind === 'smtp') {
      return {
        kind: 'custom',
        from: c.from,
        transporter: build({ host: c.host, port: c.port, secure: c.secure, ...(c.user ? { user: c.user, pass: c.pass } : {}) }),
      };
    }
    const provider = config.oauth[c.kind];
    const endpoint = parseSmtpUrl(provider.smtpUrl);
    return {
      kind: 'custom',
      from: c.from,
      transporter: build(
        { host: endpoint.host, port: endpoint.port, secure: endpoint.secure },
        {
          auth: {
            type: 'OAuth2',
            user: c.user,
            clientId: c.clientId,
            clientSecret: c.clientSecret,
            refreshToken: c.refreshToken,
            accessUrl: provider.tokenUrl,
          },
        },
      ),
    };
  };

  interface Cached {
    version: string;
    transport: ResolvedTransport | null;
  }
  const cache = new Map<string, Cached>();
  const loading = new Map<string, Promise<Cached>>();
  const readVersion = createVersionReader(redis);

  const retire = (t: ResolvedTransport | null) => {
    if (!t) return;
    setTimeout(() => t.transporter.close(), CLOSE_GRACE_MS).unref();
  };

  const load = async (workspaceId: string, version: string): Promise<Cached> => {
    const current = await settings.get(workspaceId);
    const entry: Cached = { version, transport: current ? buildCustom(current) : null };
    const previous = cache.get(workspaceId);
    cache.set(workspaceId, entry);
    if (previous && previous.transport !== entry.transport) retire(previous.transport);
    return entry;
  };

  return {
    async resolve(workspaceId) {
      const version = await readVersion(workspaceVersionKey(config.queuePrefix, 'settings', workspaceId));
      let entry = cache.get(workspaceId);
      if (!entry || entry.version !== version) {
        let pending = loading.get(workspaceId);
        if (!pending) {
          pending = load(workspaceId, version).finally(() => loading.delete(workspaceId));
          loading.set(workspaceId, pending);
        }
        entry = await pending;
      }
      return entry.transport ?? managed;
    },
    async close() {
      managed.transporter.close();
      for (const entry of cache.values()) entry.transport?.transporter.close();
      cache.clear();
      log.debug('transports closed');
    },
  };
}
