import pino, { type DestinationStream, type Logger } from 'pino';

export type { Logger } from 'pino';

/** Field paths whose values never reach a log line. */
const REDACT_PATHS = [
  'pass',
  'password',
  'secret',
  'token',
  'apiKey',
  'authorization',
  'clientSecret',
  'refreshToken',
  'accessToken',
  'keys',
  '*.pass',
  '*.password',
  '*.secret',
  '*.token',
  '*.apiKey',
  '*.authorization',
  '*.clientSecret',
  '*.refreshToken',
  '*.accessToken',
  '*.keys',
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  'auth.pass',
  'settings.pass',
  'settings.clientSecret',
  'settings.refreshToken',
];

/** Removes credentials embedded in URLs (`smtp://user:pass@host`) from free text. */
export function scrubSecrets(text: string): string {
  return text
    .replace(/([a-z][a-z0-9+.-]*:\/\/)([^\s:@/]+):([^\s@/]+)@/gi, '$1$2:***@')
    .replace(/\bmr_(send|admin)_[A-Za-z0-9_-]+/g, 'mr_$1_***')
    .replace(/\bwhsec_[A-Za-z0-9+/=]+/g, 'whsec_***')
    .replace(/(Bearer\s+)[A-Za-z0-9._~+/=-]+/gi, '$1***');
}

/** Creates the JSON logger every app uses; secrets are redacted by path and scrubbed from messages. */
export function createLogger(opts: { level: string; name: string; destination?: DestinationStream }): Logger {
  return pino(
    {
      name: opts.name,
      level: opts.level,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      serializers: {
        err: (err: unknown) => {
          const s = pino.stdSerializers.err(err as Error);
          if (s && typeof s.message === 'string') s.message = scrubSecrets(s.message);
          if (s && typeof s.stack === 'string') s.stack = scrubSecrets(s.stack);
          return s;
        },
      },
      hooks: {
        logMethod(args, method) {
          const scrubbed = args.map((a) => (typeof a === 'string' ? scrubSecrets(a) : a)) as Parameters<typeof method>;
          method.apply(this, scrubbed);
        },
      },
    },
    opts.destination ?? pino.destination(1),
  );
}
