import type { EmailLogDoc } from '../repository';
import { STATUS_LABELS, type SendMethodName } from '../../schemas';

/** How the page names the send methods (the seed's "Send method" column). */
export const SEND_METHOD_LABELS: Readonly<Record<SendMethodName, string>> = {
  managed: 'Mailroom',
  custom: 'Custom email',
  test: 'Test',
};

/** Shown above the log while a custom email is connected (the seed's banner). */
export const CUSTOM_EMAIL_BANNER =
  'A custom email is connected: outgoing emails go through your own provider, so Mailroom only sees the hand-off. ' +
  'SPF and DKIM on your domain determine whether they reach your clients.';

const iso = (d: Date | string | null | undefined): string | null => (d ? new Date(d).toISOString() : null);

/** One row of the email log as the API answers it. */
export function toEmailLogItem(d: EmailLogDoc) {
  return {
    id: d._id,
    recipient: d.recipient,
    status: d.status,
    statusLabel: STATUS_LABELS[d.status] ?? d.status,
    type: d.type,
    from: d.from,
    subject: d.subject,
    error: d.error ?? null,
    errorCode: d.errorCode ?? null,
    errorHint: d.errorHint ?? null,
    sendMethod: d.sendMethod,
    sendMethodLabel: SEND_METHOD_LABELS[d.sendMethod] ?? d.sendMethod,
    openedAt: iso(d.openedAt),
    sentAt: iso(d.sentAt),
    deliveredAt: iso(d.deliveredAt),
    clickedAt: iso(d.clickedAt),
    opens: d.opens ?? 0,
    clicks: d.clicks ?? 0,
    reference: d.reference ?? null,
    resendOf: d.resendOf ?? null,
    resendCount: d.resendCount ?? 0,
    lastResentAt: iso(d.lastResentAt),
    attempts: d.attempts ?? 0,
    nextRetryAt: iso(d.nextRetryAt),
    createdAt: iso(d.createdAt),
  };
}
export type EmailLogItem = ReturnType<typeof toEmailLogItem>;

export interface TimelineEntry {
  type: string;
  at: string;
  receivedAt?: string;
  provider?: string;
  machine?: boolean;
  late?: boolean;
  changedStatus?: boolean;
  detail?: string;
  url?: string;
  /** This event settled an unknown hand-off (EHANDOFF_UNKNOWN): the email left. */
  resolvedHandOff?: boolean;
}

/**
 * The event timeline of one entry: what the entry itself tells (queued, then sent or failed)
 * followed by the delivery events stored in `timeline` by the event worker, oldest first.
 */
export function emailLogTimeline(d: EmailLogDoc): TimelineEntry[] {
  const out: TimelineEntry[] = [];
  if (d.createdAt) out.push({ type: 'queued', at: iso(d.createdAt)! });
  if (d.status === 'send_failed') {
    out.push({ type: 'send_failed', at: iso(d.sentAt)!, ...(d.error ? { detail: d.error } : {}) });
  } else if (d.status === 'queued') {
    // Between retries: the entry holds the latest attempt's error.
    if (d.error) out.push({ type: 'retrying', at: iso(d.sentAt)!, detail: d.error });
  } else {
    out.push({ type: 'sent', at: iso(d.sentAt)! });
  }
  const stored = (d as { timeline?: unknown }).timeline;
  const resolvedBy = Array.isArray(stored)
    ? (stored as Array<Record<string, unknown> | null>).find((e) => e?.resolvedHandOff === true)
    : undefined;
  if (resolvedBy && out.at(-1)?.type === 'sent') {
    // The send path never heard the server's answer; a provider's event later said the email left.
    out[out.length - 1] = {
      type: 'handoff_unknown',
      at: iso(d.sentAt)!,
      detail: `The mail server's answer to this email never arrived (EHANDOFF_UNKNOWN); resolved by the provider's ${String(resolvedBy.type)} event: the email left.`,
    };
  }
  const events: TimelineEntry[] = [];
  for (const e of Array.isArray(stored) ? stored : []) {
    if (!e || typeof e !== 'object') continue;
    const r = e as Record<string, unknown>;
    if (typeof r.type !== 'string' || !r.at) continue;
    const entry: TimelineEntry = { type: r.type, at: iso(r.at as Date)! };
    if (r.receivedAt) entry.receivedAt = iso(r.receivedAt as Date)!;
    if (typeof r.provider === 'string') entry.provider = r.provider;
    if (typeof r.machine === 'boolean') entry.machine = r.machine;
    if (typeof r.late === 'boolean') entry.late = r.late;
    if (typeof r.changedStatus === 'boolean') entry.changedStatus = r.changedStatus;
    if (typeof r.detail === 'string') entry.detail = r.detail;
    if (typeof r.url === 'string') entry.url = r.url;
    if (r.resolvedHandOff === true) entry.resolvedHandOff = true;
    events.push(entry);
  }
  events.sort((a, b) => a.at.localeCompare(b.at));
  return [...out, ...events];
}

/** The detail view: the row, its timeline and its resend links both ways. */
export function toEmailLogDetail(d: EmailLogDoc) {
  const resends = Array.isArray(d.resends) ? d.resends : [];
  return {
    ...toEmailLogItem(d),
    metadata: d.metadata ?? null,
    messageId: d.messageId ?? null,
    providerMessageId: d.providerMessageId ?? null,
    timeline: emailLogTimeline(d),
    resends,
    links: { original: d.resendOf ?? null, resends },
  };
}
