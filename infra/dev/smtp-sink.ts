/**
 * Dev / test SMTP sink: a real SMTP server (smtp-server) that stands in for the managed
 * provider. It records every accepted message and includes a mailbox simulator: recipients at
 * `simulator.mailroom.test` behave according to their local part (see SIMULATOR_DOMAIN below):
 * some are refused at RCPT TO, and with `events` set, others are followed by provider events
 * posted to the API (mailbox-simulator.ts).
 *
 * An opt-in chaos mode (smtp-chaos.ts) drops connections, answers 421 or replies slowly.
 *
 * Other servers for error tests: misbehaving-servers.ts (silent, resetting) and
 * oauth-token-endpoint.ts (XOAUTH2).
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { SMTPServer } from 'smtp-server';
import type { SMTPServerAddress, SMTPServerAuthentication, SMTPServerDataStream, SMTPServerSession } from 'smtp-server';
import { createMailboxSimulator, type MailboxSimulatorOptions } from './mailbox-simulator';
import { createSmtpChaos, type SmtpChaosOptions, type SmtpChaosReport } from './smtp-chaos';

export type { ChaosFault, ChaosStage, SinkAttempt, SmtpChaosOptions, SmtpChaosReport } from './smtp-chaos';

export interface SinkMessage {
  from: string;
  to: string[];
  raw: string;
  messageId?: string;
  mailroomId?: string;
  subject?: string;
  receivedAt: Date;
  user?: string;
  providerMessageId: string;
}

export interface SmtpSinkOptions {
  /** 0 = pick a free port */
  port?: number;
  /** default 127.0.0.1 */
  host?: string;
  /** require AUTH PLAIN/LOGIN with these credentials */
  auth?: { user: string; pass: string };
  /** accept AUTH XOAUTH2 for this user and access token */
  oauth2?: { user: string; accessToken: string };
  /** mailbox simulator at simulator.mailroom.test, default true */
  simulator?: boolean;
  /** delay of the DATA reply for `slow@simulator.mailroom.test`, default 3000 */
  slowMs?: number;
  /** SIZE limit; larger messages are answered 552 by smtp-server */
  maxMessageBytes?: number;
  /** Opt-in faults: drop connections, answer 421, reply slowly (off by default). */
  chaos?: SmtpChaosOptions;
  /**
   * Provider events for simulator addresses (delivered@, opened@, clicked@, bounce-async@,
   * complained@, delayed@), posted signed to the API; see mailbox-simulator.ts. Off when unset.
   */
  events?: MailboxSimulatorOptions;
}

export interface SmtpSink {
  port: number;
  host: string;
  /** smtp://[user:pass@]host:port */
  url: string;
  messages: SinkMessage[];
  waitForMessages(n: number, timeoutMs?: number): Promise<SinkMessage[]>;
  countFor(mailroomId: string): number;
  /** What chaos mode did, transaction by transaction; null when chaos mode is off. */
  chaos: SmtpChaosReport | null;
  close(): Promise<void>;
}

export const SIMULATOR_DOMAIN = 'simulator.mailroom.test';

/** An SMTP rejection: smtp-server answers `${responseCode} ${message}`. */
function smtpError(responseCode: number, message: string): Error & { responseCode: number } {
  return Object.assign(new Error(message), { responseCode });
}

/** Simulator replies at RCPT TO, by local part (before an optional +tag). */
const RCPT_REJECTIONS: Readonly<Record<string, [number, string]>> = {
  bounce: [550, '5.1.1 The email account that you tried to reach does not exist'],
  tempfail: [451, '4.3.0 Temporary local problem, try again later'],
  'tempfail-once': [451, '4.3.0 Temporary local problem, try again later'],
  mailboxfull: [552, '5.2.2 Mailbox full'],
  blocked: [554, '5.7.1 Message rejected as spam'],
};

/** Local part (without +tag), lower-cased, when the address is at the simulator domain. */
export function simulatorMailbox(address: string): string | undefined {
  const at = address.lastIndexOf('@');
  if (at < 0 || address.slice(at + 1).toLowerCase() !== SIMULATOR_DOMAIN) return undefined;
  return address.slice(0, at).split('+')[0]!.toLowerCase();
}

/** Light RFC 5322 header parser: unfolds continuation lines, first occurrence wins, keys lower-case. */
export function parseHeaders(raw: string): Record<string, string> {
  const end = raw.search(/\r?\n\r?\n/);
  const head = end < 0 ? raw : raw.slice(0, end);
  const headers: Record<string, string> = {};
  let current: string | undefined;
  for (const line of head.split(/\r?\n/)) {
    if (/^[ \t]/.test(line) && current) {
      headers[current] += ' ' + line.trim();
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) {
      current = undefined;
      continue;
    }
    const key = line.slice(0, colon).trim().toLowerCase();
    if (key in headers) {
      current = undefined; // keep the first occurrence
      continue;
    }
    headers[key] = line.slice(colon + 1).trim();
    current = key;
  }
  return headers;
}

/** Decodes RFC 2047 encoded words (B and Q) well enough for subjects in tests. */
function decodeWords(value: string): string {
  return value.replace(/=\?([^?]+)\?([bBqQ])\?([^?]*)\?=\s*(?==\?)?/g, (_m, _charset: string, enc: string, text: string) => {
    if (enc.toUpperCase() === 'B') return Buffer.from(text, 'base64').toString('utf8');
    const bytes = text.replace(/_/g, ' ').replace(/=([0-9a-fA-F]{2})/g, (_x, hex: string) => String.fromCharCode(parseInt(hex, 16)));
    return Buffer.from(bytes, 'latin1').toString('utf8');
  });
}

function newProviderMessageId(): string {
  return randomBytes(8).toString('hex').toUpperCase();
}

export async function startSmtpSink(opts: SmtpSinkOptions = {}): Promise<SmtpSink> {
  const host = opts.host ?? '127.0.0.1';
  const simulator = opts.simulator ?? true;
  const slowMs = opts.slowMs ?? 3000;
  const messages: SinkMessage[] = [];
  const seenTempfailOnce = new Set<string>();
  const waiters = new Set<() => void>();
  const timers = new Set<NodeJS.Timeout>();
  const simulatedEvents = simulator && opts.events ? createMailboxSimulator(opts.events) : null;
  const authMethods = [...(opts.auth ? ['PLAIN', 'LOGIN'] : []), ...(opts.oauth2 ? ['XOAUTH2'] : [])];

  /** The simulator's answer to RCPT TO. */
  const rcptTo = (address: SMTPServerAddress, callback: (err?: Error | null) => void) => {
    const mailbox = simulator ? simulatorMailbox(address.address) : undefined;
    if (mailbox === 'tempfail-once') {
      const key = address.address.toLowerCase();
      if (seenTempfailOnce.has(key)) return callback();
      seenTempfailOnce.add(key);
    }
    const rejection = mailbox === undefined ? undefined : RCPT_REJECTIONS[mailbox];
    if (rejection) return callback(smtpError(rejection[0], rejection[1]));
    return callback();
  };

  const server = new SMTPServer({
    disabledCommands: ['STARTTLS'],
    allowInsecureAuth: true,
    authOptional: authMethods.length === 0,
    authMethods: authMethods.length ? authMethods : ['PLAIN', 'LOGIN'],
    // we write our own enhanced status codes so replies read exactly as documented
    hideENHANCEDSTATUSCODES: true,
    size: opts.maxMessageBytes,
    closeTimeout: 1000,
    logger: false,
    banner: 'Mailroom SMTP sink',

    onAuth(auth: SMTPServerAuthentication, _session: SMTPServerSession, callback) {
      const invalid = smtpError(535, '5.7.8 Error: authentication credentials invalid');
      if (auth.method === 'XOAUTH2') {
        const ok = opts.oauth2 && auth.username === opts.oauth2.user && auth.accessToken === opts.oauth2.accessToken;
        return ok ? callback(null, { user: auth.username }) : callback(invalid);
      }
      const ok = opts.auth && auth.username === opts.auth.user && auth.password === opts.auth.pass;
      return ok ? callback(null, { user: auth.username }) : callback(invalid);
    },

    onMailFrom(_address: SMTPServerAddress, session: SMTPServerSession, callback) {
      if (!chaos) return callback();
      chaos.begin(session);
      chaos.at('mail', session, callback, () => callback());
    },

    onRcptTo(address: SMTPServerAddress, session: SMTPServerSession, callback) {
      if (!chaos) return rcptTo(address, callback);
      chaos.note(session, { to: address.address });
      const reply = (err?: Error | null) => {
        if (err) chaos.end(session, 'rejected');
        callback(err);
      };
      chaos.at('rcpt', session, callback, () => rcptTo(address, reply));
    },

    onData(stream: SMTPServerDataStream, session: SMTPServerSession, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('error', (err: Error) => callback(err));
      stream.on('end', () => {
        if (stream.sizeExceeded) {
          return callback(smtpError(552, `5.3.4 Message exceeds fixed maximum message size ${opts.maxMessageBytes}`));
        }
        const raw = Buffer.concat(chunks).toString('utf8');
        const headers = parseHeaders(raw);
        const providerMessageId = newProviderMessageId();
        const mailFrom = session.envelope.mailFrom;
        const to = session.envelope.rcptTo.map((r) => r.address);
        const user = session.user === undefined ? undefined : String(session.user);
        const message: SinkMessage = {
          from: mailFrom ? mailFrom.address : '',
          to,
          raw,
          messageId: headers['message-id'],
          mailroomId: headers['x-mailroom-id'],
          subject: headers['subject'] === undefined ? undefined : decodeWords(headers['subject']),
          receivedAt: new Date(),
          user,
          providerMessageId,
        };
        const reply = () => {
          messages.push(message);
          chaos?.end(session, 'accepted');
          simulatedEvents?.accepted(message, simulatorMailbox);
          for (const wake of [...waiters]) wake();
          callback(null, `2.0.0 Ok: queued as ${providerMessageId}`);
        };
        const accept = () => {
          const slow = simulator && to.some((addr) => simulatorMailbox(addr) === 'slow');
          if (!slow) return reply();
          const timer = setTimeout(() => {
            timers.delete(timer);
            reply();
          }, slowMs);
          timers.add(timer);
        };
        if (!chaos) return accept();
        chaos.note(session, { mailroomId: message.mailroomId });
        chaos.at('data', session, callback, accept);
      });
    },

    onClose(session: SMTPServerSession) {
      chaos?.closed(session);
    },
  });
  const chaos = opts.chaos ? createSmtpChaos(opts.chaos, server) : null;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  // keep later errors (client resets and the like) from crashing the process
  server.on('error', () => undefined);
  const port = (server.server.address() as net.AddressInfo).port;
  const credentials = opts.auth ? `${encodeURIComponent(opts.auth.user)}:${encodeURIComponent(opts.auth.pass)}@` : '';

  return {
    port,
    host,
    url: `smtp://${credentials}${host}:${port}`,
    messages,
    countFor: (mailroomId) => messages.filter((m) => m.mailroomId === mailroomId).length,
    chaos: chaos?.report ?? null,
    waitForMessages(n, timeoutMs = 5000) {
      if (messages.length >= n) return Promise.resolve(messages.slice());
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`smtp sink: waited ${timeoutMs} ms for ${n} messages, got ${messages.length}`));
        }, timeoutMs);
        const check = () => {
          if (messages.length < n) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve(messages.slice());
        };
        waiters.add(check);
      });
    },
    close() {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      chaos?.stop();
      simulatedEvents?.stop();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
