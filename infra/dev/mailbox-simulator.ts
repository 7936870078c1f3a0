/**
 * The provider half of the mailbox simulator: after the SMTP sink accepts a message for one of
 * these addresses at `simulator.mailroom.test` (a `+tag` is ignored), it reports what a real
 * provider would report later, as signed `POST /v1/webhooks/mailroom` requests to the API (the
 * documented format, signed with the WEBHOOK_SECRET the API checks). Nothing goes to the
 * database directly: the events take the queue, the event worker, the precedence table and
 * suppression exactly as production events do.
 *
 *   delivered@     delivered                                   (after 1 step)
 *   opened@        delivered, then a human open                (open after the machine-open window)
 *   clicked@       delivered, opened, then clicked on the message's first link
 *   bounce-async@  a hard bounce the provider learnt of after accepting the message
 *   complained@    delivered, then a spam complaint
 *   delayed@       delivery_delayed, then delivered
 *
 * A step is `stepMs` (default 1 s); the open comes `openAfterMs` (default 3 s) after acceptance,
 * past the API's default machine-open window of 2 s.
 */
import { createHmac } from 'node:crypto';

type SimulatedType = 'delivered' | 'delivery_delayed' | 'opened' | 'clicked' | 'bounced' | 'complained';

interface SimulatedEvent {
  type: SimulatedType;
  /** When, after acceptance: a number of steps, or relative to the open. */
  at: { steps: number } | { afterOpenSteps: number };
  bounceType?: 'hard' | 'soft';
  detail?: string;
}

/** Mailbox (local part) → the events its messages get. */
export const SIMULATED_EVENTS: Readonly<Record<string, readonly SimulatedEvent[]>> = {
  delivered: [{ type: 'delivered', at: { steps: 1 } }],
  opened: [
    { type: 'delivered', at: { steps: 1 } },
    { type: 'opened', at: { afterOpenSteps: 0 } },
  ],
  clicked: [
    { type: 'delivered', at: { steps: 1 } },
    { type: 'opened', at: { afterOpenSteps: 0 } },
    { type: 'clicked', at: { afterOpenSteps: 1 } },
  ],
  'bounce-async': [
    {
      type: 'bounced',
      at: { steps: 1 },
      bounceType: 'hard',
      detail:
        '550 5.1.1 The email account that you tried to reach does not exist (reported by the receiving server after it accepted the message)',
    },
  ],
  complained: [
    { type: 'delivered', at: { steps: 1 } },
    { type: 'complained', at: { steps: 2 }, detail: 'The recipient marked the message as spam' },
  ],
  delayed: [
    { type: 'delivery_delayed', at: { steps: 1 }, detail: '451 4.4.1 No answer from the receiving server yet; the provider keeps trying' },
    { type: 'delivered', at: { steps: 3 } },
  ],
};

export interface MailboxSimulatorOptions {
  /** The API's `…/v1/webhooks/mailroom`. */
  webhookUrl: string;
  /** The API's WEBHOOK_SECRET. */
  secret: string;
  /** One step of the timetable above; default 1000. */
  stepMs?: number;
  /** When the open comes after acceptance; default 3000. */
  openAfterMs?: number;
  /** Lines about failed deliveries of events. */
  log?: (line: string) => void;
}

export interface AcceptedMessage {
  to: string[];
  raw: string;
  messageId?: string | undefined;
  providerMessageId: string;
}

/** Delivery retries of one event, as providers do: 1 s, 2 s, 4 s … about four minutes in all. */
const POST_ATTEMPTS = 8;

/** The first http(s) link of the body (after the headers), quoted-printable undone; our tracking links decoded to their target. */
export function firstLink(raw: string): string | undefined {
  const start = raw.search(/\r?\n\r?\n/);
  let body = start < 0 ? '' : raw.slice(start);
  if (/content-transfer-encoding:\s*quoted-printable/i.test(raw)) {
    body = body.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/g, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16)));
  }
  const url = /https?:\/\/[^\s"'<>]+/i.exec(body)?.[0]?.replace(/&amp;/g, '&');
  if (!url) return undefined;
  // `/t/c/c1.<emailId>.<base64url target>.<mac>` (see tracking-token.ts): a provider reports the target.
  const tracked = /\/t\/c\/c1\.[^./]+\.([A-Za-z0-9_-]+)\.[A-Za-z0-9_-]+$/.exec(url);
  return tracked ? Buffer.from(tracked[1]!, 'base64url').toString('utf8') : url;
}

export function createMailboxSimulator(opts: MailboxSimulatorOptions) {
  const stepMs = opts.stepMs ?? 1000;
  const openAfterMs = opts.openAfterMs ?? 3000;
  const timers = new Set<NodeJS.Timeout>();
  let stopped = false;

  const later = (ms: number, fn: () => void) => {
    const timer = setTimeout(() => {
      timers.delete(timer);
      if (!stopped) fn();
    }, ms);
    timers.add(timer);
  };

  const post = (event: Record<string, unknown>, attempt = 1) => {
    const body = JSON.stringify(event);
    const t = Math.floor(Date.now() / 1000);
    const signature = `t=${t},v1=${createHmac('sha256', opts.secret).update(`${t}.${body}`).digest('hex')}`;
    const retry = (why: string) => {
      if (attempt >= POST_ATTEMPTS) return opts.log?.(`simulator: gave up on event ${String(event.id)} after ${attempt} attempts (${why})`);
      // At least a second apart: the signature includes the time, and the API refuses a replay.
      later(1000 * 2 ** (attempt - 1), () => post(event, attempt + 1));
    };
    fetch(opts.webhookUrl, { method: 'POST', headers: { 'content-type': 'application/json', 'mailroom-signature': signature }, body }).then(
      async (res) => {
        await res.arrayBuffer().catch(() => undefined);
        if (res.ok) return;
        if (res.status >= 500 || res.status === 429) return retry(`HTTP ${res.status}`);
        opts.log?.(`simulator: event ${String(event.id)} refused with HTTP ${res.status}`);
      },
      (err: unknown) => retry(err instanceof Error ? err.message : String(err)),
    );
  };

  return {
    /** Schedules the events of every simulator mailbox among the message's recipients. */
    accepted(message: AcceptedMessage, mailboxOf: (address: string) => string | undefined) {
      for (const address of message.to) {
        const mailbox = mailboxOf(address);
        const events = mailbox === undefined ? undefined : SIMULATED_EVENTS[mailbox];
        if (!events) continue;
        const link = events.some((e) => e.type === 'clicked') ? firstLink(message.raw) : undefined;
        for (const e of events) {
          const delay = 'steps' in e.at ? e.at.steps * stepMs : openAfterMs + e.at.afterOpenSteps * stepMs;
          later(delay, () =>
            post({
              id: `sim.${message.providerMessageId}.${mailbox}.${e.type}`,
              type: e.type,
              timestamp: new Date().toISOString(),
              providerMessageId: message.providerMessageId,
              ...(message.messageId ? { messageId: message.messageId } : {}),
              ...(e.bounceType ? { bounceType: e.bounceType } : {}),
              ...(e.detail ? { detail: e.detail } : {}),
              ...(e.type === 'clicked' && link ? { url: link } : {}),
            }),
          );
        }
      }
    },
    stop() {
      stopped = true;
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
    },
  };
}
