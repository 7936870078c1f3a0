/**
 * Chaos mode of the SMTP sink (infra/dev/smtp-sink.ts): a seeded share of SMTP transactions
 * (MAIL FROM … end of DATA) has its connection reset, is answered 421 and closed, or gets a
 * slow reply. Faults only ever come before the 250 that accepts a message: after it, a resend
 * would be a legitimate duplicate, and the tests that use this mode assert there are none.
 *
 * Every transaction is recorded with its times, recipient and X-Mailroom-Id (as far as it got),
 * so a test can check that retries happened and were spaced by a backoff, not a tight loop.
 */
import type net from 'node:net';
import type { SMTPServer, SMTPServerSession } from 'smtp-server';
import { seededRandom } from './seeded-random';

export type ChaosFault = 'drop' | '421' | 'slow';
/** Where a fault strikes: the reply to MAIL FROM, to RCPT TO, or to the end of DATA. */
export type ChaosStage = 'mail' | 'rcpt' | 'data';

export interface SmtpChaosOptions {
  /** Share (0..1) of transactions whose TCP connection is reset instead of a reply. */
  drop?: number;
  /** Share (0..1) of transactions answered `421` (the server then closes the connection). */
  reject421?: number;
  /** Share (0..1) of transactions whose reply comes `slowMs` late. */
  slow?: number;
  /** Delay of a slow reply, default 200 ms (keep it below the client's socket timeout). */
  slowMs?: number;
  /** Stages a drop strikes at, in turn; default mail then data (the body read, no 250 sent). */
  dropAt?: ChaosStage[];
  /** Stages a 421 strikes at, in turn; default mail then rcpt. */
  rejectAt?: Array<'mail' | 'rcpt'>;
  /** Stages a slow reply strikes at, in turn; default mail, rcpt, data. */
  slowAt?: ChaosStage[];
  /** Seed of the choice of transactions (same seed, same sequence of faults); default 1. */
  seed?: number;
}

/** One SMTP transaction as the sink saw it. Times are `Date.now()` milliseconds. */
export interface SinkAttempt {
  session: string;
  startedAt: number;
  /** When the sink replied for the last time or cut the connection (undefined while open). */
  endedAt?: number;
  /** First recipient, once RCPT TO arrived (lower-cased). */
  to?: string;
  /** X-Mailroom-Id header, once the DATA body arrived. */
  mailroomId?: string;
  fault?: ChaosFault;
  stage?: ChaosStage;
  /** `rejected`: refused by the sink itself (simulator); `abandoned`: the client left or reset. */
  outcome: 'open' | 'accepted' | 'dropped' | '421' | 'rejected' | 'abandoned';
}

export interface SmtpChaosReport {
  /** Every transaction, in the order they began. */
  attempts: SinkAttempt[];
  /** TCP connections accepted. */
  connections: number;
  /** What was done, by fault and stage. */
  counts: Record<ChaosFault, Record<ChaosStage, number>>;
  /** Transactions with this first recipient (case-insensitive), in order. */
  attemptsTo(address: string): SinkAttempt[];
}

export interface SmtpChaos {
  report: SmtpChaosReport;
  /** MAIL FROM arrived: starts a transaction and decides its fault. */
  begin(session: SMTPServerSession): void;
  /** Notes what the transaction has revealed so far (recipient, message id). */
  note(session: SMTPServerSession, fields: { to?: string; mailroomId?: string }): void;
  /**
   * At `stage`: applies the transaction's fault if it strikes here (answering through `reply`),
   * otherwise runs `next`, the sink's normal handling (late, for a slow reply).
   */
  at(stage: ChaosStage, session: SMTPServerSession, reply: (err?: Error | null) => void, next: () => void): void;
  /** The sink accepted (250) or refused the transaction. */
  end(session: SMTPServerSession, outcome: 'accepted' | 'rejected'): void;
  /** The connection went away. */
  closed(session: SMTPServerSession): void;
  stop(): void;
}

const emptyCounts = (): Record<ChaosStage, number> => ({ mail: 0, rcpt: 0, data: 0 });

/** Hooks an SMTPServer (before it listens) with the chaos mode. */
export function createSmtpChaos(opts: SmtpChaosOptions, server: SMTPServer): SmtpChaos {
  const random = seededRandom(opts.seed ?? 1);
  const slowMs = opts.slowMs ?? 200;
  const stages: Record<ChaosFault, ChaosStage[]> = {
    drop: opts.dropAt ?? ['mail', 'data'],
    '421': opts.rejectAt ?? ['mail', 'rcpt'],
    slow: opts.slowAt ?? ['mail', 'rcpt', 'data'],
  };
  const turns: Record<ChaosFault, number> = { drop: 0, '421': 0, slow: 0 };
  const attempts: SinkAttempt[] = [];
  const open = new Map<string, SinkAttempt>();
  const sockets = new Map<number, net.Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const report: SmtpChaosReport = {
    attempts,
    connections: 0,
    counts: { drop: emptyCounts(), '421': emptyCounts(), slow: emptyCounts() },
    attemptsTo: (address) => attempts.filter((a) => a.to === address.toLowerCase()),
  };

  // smtp-server keeps its sockets to itself; a session names its client's port, so map by that.
  server.server.on('connection', (socket: net.Socket) => {
    report.connections++;
    const port = socket.remotePort;
    if (port === undefined) return;
    sockets.set(port, socket);
    socket.once('close', () => {
      if (sockets.get(port) === socket) sockets.delete(port);
    });
  });

  const finish = (session: SMTPServerSession, outcome: SinkAttempt['outcome']) => {
    const attempt = open.get(session.id);
    if (!attempt) return;
    open.delete(session.id);
    attempt.outcome = outcome;
    attempt.endedAt = Date.now();
  };

  const pickFault = (): ChaosFault | undefined => {
    const r = random();
    let edge = 0;
    for (const [fault, share] of [
      ['drop', opts.drop],
      ['421', opts.reject421],
      ['slow', opts.slow],
    ] as const) {
      edge += share ?? 0;
      if (r < edge) return fault;
    }
    return undefined;
  };

  return {
    report,
    begin(session) {
      finish(session, 'abandoned'); // an earlier transaction of this session that never ended (RSET)
      const attempt: SinkAttempt = { session: session.id, startedAt: Date.now(), outcome: 'open' };
      const fault = pickFault();
      if (fault) {
        const list = stages[fault];
        attempt.fault = fault;
        attempt.stage = list[turns[fault]++ % list.length];
      }
      attempts.push(attempt);
      open.set(session.id, attempt);
    },
    note(session, fields) {
      const attempt = open.get(session.id);
      if (!attempt) return;
      if (fields.to !== undefined) attempt.to ??= fields.to.toLowerCase();
      if (fields.mailroomId !== undefined) attempt.mailroomId = fields.mailroomId;
    },
    at(stage, session, reply, next) {
      const attempt = open.get(session.id);
      if (!attempt?.fault || attempt.stage !== stage) return next();
      report.counts[attempt.fault][stage]++;
      if (attempt.fault === 'slow') {
        const timer = setTimeout(() => {
          timers.delete(timer);
          next();
        }, slowMs);
        timers.add(timer);
        return;
      }
      if (attempt.fault === '421') {
        finish(session, '421');
        return reply(Object.assign(new Error('4.4.2 Service not available, closing transmission channel'), { responseCode: 421 }));
      }
      finish(session, 'dropped');
      sockets.get(session.remotePort)?.resetAndDestroy();
      // The socket is gone: smtp-server writes nothing more, the callback only ends the command.
      reply(Object.assign(new Error('connection dropped by chaos mode'), { responseCode: 421 }));
    },
    end: finish,
    closed(session) {
      finish(session, 'abandoned');
    },
    stop() {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
    },
  };
}
