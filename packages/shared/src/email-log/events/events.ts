import { z } from 'zod';
import { EMAIL_ID_PATTERN } from '../../ids';
import { HANDED_OFF_STATUSES, type EmailStatus } from '../../schemas';

/** What a provider (or our own pixel and links) can tell us about an email after hand-off. */
export const DELIVERY_EVENT_TYPES = ['delivered', 'delivery_delayed', 'opened', 'clicked', 'bounced', 'complained', 'failed'] as const;
export type DeliveryEventType = (typeof DELIVERY_EVENT_TYPES)[number];

/** Where an event came from: a webhook provider, or `tracking` (our pixel and links). */
export const EVENT_SOURCES = ['mailroom', 'mailgun', 'sendgrid', 'postmark', 'ses', 'tracking'] as const;
export type EventSource = (typeof EVENT_SOURCES)[number];
export const WEBHOOK_PROVIDERS = ['mailroom', 'mailgun', 'sendgrid', 'postmark', 'ses'] as const;
export type WebhookProvider = (typeof WEBHOOK_PROVIDERS)[number];

export const BOUNCE_TYPES = ['hard', 'soft'] as const;
export type BounceType = (typeof BOUNCE_TYPES)[number];

/** Data of a job on the delivery-events queue (job id derived from `provider` + `id`). */
export const DeliveryEvent = z.object({
  /** The provider's event id: redeliveries of one event carry the same id. */
  id: z.string().min(1).max(300),
  provider: z.enum(EVENT_SOURCES),
  type: z.enum(DELIVERY_EVENT_TYPES),
  /** The provider's event time. */
  at: z.iso.datetime({ offset: true }),
  receivedAt: z.iso.datetime({ offset: true }),
  /** Our id, from X-Mailroom-Id or the Message-ID we set, when the provider echoed it. */
  emailId: z.string().regex(EMAIL_ID_PATTERN).optional(),
  providerMessageId: z.string().min(1).max(300).optional(),
  bounceType: z.enum(BOUNCE_TYPES).optional(),
  detail: z.string().max(2000).optional(),
  url: z.string().max(4096).optional(),
  /** Set by the tracking route for known scanner and prefetch user agents. */
  machine: z.boolean().optional(),
});
export type DeliveryEvent = z.infer<typeof DeliveryEvent>;

/** BullMQ refuses ':' in custom ids; provider ids are opaque, so map it away. */
export function deliveryEventJobId(e: Pick<DeliveryEvent, 'provider' | 'id'>): string {
  return `${e.provider}.${e.id.replace(/:/g, '_')}`;
}

/** Our id from a Message-ID (`<em_…@domain>`, brackets optional) or an X-Mailroom-Id value. */
export function emailIdFrom(value: string | null | undefined): string | undefined {
  if (!value) return undefined;
  const local = value.trim().replace(/^</, '').replace(/>$/, '').split('@')[0] ?? '';
  return EMAIL_ID_PATTERN.test(local) ? local : undefined;
}

/**
 * Status precedence: the status of an entry is the one of its highest-ranked event, so the
 * final status does not depend on arrival order or duplicates. Negative outcomes outrank
 * engagement: a late hard bounce or complaint must show even after `opened`. A soft bounce
 * ranks below `delivered` because providers keep retrying it and may still deliver.
 * `rank: null` events only go to the timeline. The send path's `sent` is rank 0.
 */
export const STATUS_PRECEDENCE = [
  { event: 'delivery_delayed', status: null, rank: null },
  { event: 'bounced:soft', status: 'bounced', rank: 1 },
  { event: 'delivered', status: 'delivered', rank: 2 },
  { event: 'opened', status: 'opened', rank: 3 },
  { event: 'clicked', status: 'clicked', rank: 4 },
  { event: 'failed', status: 'failed', rank: 5 },
  { event: 'bounced:hard', status: 'bounced', rank: 6 },
  { event: 'complained', status: 'complained', rank: 7 },
] as const satisfies ReadonlyArray<{ event: string; status: EmailStatus | null; rank: number | null }>;

const PRECEDENCE = new Map<string, { status: EmailStatus | null; rank: number | null }>(STATUS_PRECEDENCE.map((p) => [p.event, p]));

/** Statuses events may move an entry out of (besides their own): `queued` and `send_failed` are the send path's. */
const EVENT_BASE_STATUSES: ReadonlySet<EmailStatus> = new Set(HANDED_OFF_STATUSES);

/** Error code and hint shown for event-driven failures (the hint text lives in ERROR_HINTS). */
export const EVENT_ERROR_CODES: Readonly<Partial<Record<EmailStatus, string>>> = {
  bounced: 'BOUNCED',
  complained: 'COMPLAINED',
  failed: 'DELIVERY_FAILED',
};

export const TIMELINE_MAX = 50;
/** Event ids remembered per entry for de-duplication (beyond this, the queue's job ids still dedupe). */
export const EVENT_IDS_MAX = 200;

export interface TimelineItem {
  id: string;
  type: DeliveryEventType;
  at: Date;
  receivedAt: Date;
  provider: EventSource;
  /** A likely machine open or scanner click: kept here, never counted. */
  machine?: boolean;
  /** Arrived after an event with a later provider time. */
  late?: boolean;
  changedStatus: boolean;
  detail?: string;
  url?: string;
  bounceType?: BounceType;
  /** The first event of an entry whose hand-off had ended unknown (EHANDOFF_UNKNOWN): it settled that the email left. */
  resolvedHandOff?: true;
}

/** The entry fields owned by delivery events. */
export interface EventFields {
  status: EmailStatus;
  deliveredAt: Date | null;
  openedAt: Date | null;
  opens: number;
  clickedAt: Date | null;
  clicks: number;
  bouncedAt: Date | null;
  bounceType: BounceType | null;
  bounceDetail: string | null;
  complainedAt: Date | null;
  failedAt: Date | null;
  failDetail: string | null;
  /** Sorted by provider time (then id), the last TIMELINE_MAX. */
  timeline: TimelineItem[];
  /** Applied event ids (`provider.id`), the last EVENT_IDS_MAX in arrival order. */
  eventIds: string[];
}

export interface ReduceContext {
  /** When the email left; opens within `machineWindowMs` of it are machine opens. */
  sentAt: Date | null;
  machineWindowMs: number;
}

export function emptyEventFields(status: EmailStatus = 'sent'): EventFields {
  return {
    status,
    deliveredAt: null,
    openedAt: null,
    opens: 0,
    clickedAt: null,
    clicks: 0,
    bouncedAt: null,
    bounceType: null,
    bounceDetail: null,
    complainedAt: null,
    failedAt: null,
    failDetail: null,
    timeline: [],
    eventIds: [],
  };
}

const precedenceKey = (type: DeliveryEventType, bounceType: BounceType | null | undefined) =>
  type === 'bounced' ? `bounced:${bounceType ?? 'soft'}` : type;

/** The rank the stored status stands for (a `bounced` status ranks by its winning bounce). */
export function statusRank(status: EmailStatus, bounceType: BounceType | null): number {
  if (status === 'sent') return 0;
  if (status === 'bounced') return PRECEDENCE.get(`bounced:${bounceType ?? 'soft'}`)!.rank!;
  return PRECEDENCE.get(status)?.rank ?? 0;
}

const minDate = (a: Date | null, b: Date) => (a === null || b < a ? b : a);
const byTimeThenId = (a: TimelineItem, b: TimelineItem) => a.at.getTime() - b.at.getTime() || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/** Whether bounce `b` beats the stored one: hard over soft, then the earliest, then the smaller detail. */
function bounceWins(s: EventFields, type: BounceType, at: Date, detail: string): boolean {
  if (s.bouncedAt === null || s.bounceType === null) return true;
  if (type !== s.bounceType) return type === 'hard';
  if (at.getTime() !== s.bouncedAt.getTime()) return at < s.bouncedAt;
  return detail < (s.bounceDetail ?? '');
}

/** A human open/click, or a machine one: flagged by the tracking route or too soon after sending. */
export function isMachine(e: DeliveryEvent, ctx: ReduceContext): boolean {
  if (e.machine) return true;
  if (e.type !== 'opened' || !ctx.sentAt) return false;
  return new Date(e.at).getTime() - ctx.sentAt.getTime() < ctx.machineWindowMs;
}

/**
 * Folds one event into the entry fields. Pure; returns the same object when the event was
 * already applied. Every field is a commutative, idempotent merge (max rank, earliest time,
 * distinct counts, a sorted set), so any order and any duplication of a set of events gives
 * the same fields; only the timeline's `late`/`changedStatus` flags describe arrival order.
 */
export function applyEvent(state: EventFields, e: DeliveryEvent, ctx: ReduceContext): EventFields {
  const key = deliveryEventJobId(e);
  if (state.eventIds.includes(key)) return state;
  const s: EventFields = { ...state, eventIds: [...state.eventIds, key].slice(-EVENT_IDS_MAX) };
  const at = new Date(e.at);
  const machine = isMachine(e, ctx);

  switch (e.type) {
    case 'delivered':
      s.deliveredAt = minDate(s.deliveredAt, at);
      break;
    case 'opened':
      if (!machine) {
        s.openedAt = minDate(s.openedAt, at);
        s.opens += 1;
      }
      break;
    case 'clicked':
      if (!machine) {
        s.clickedAt = minDate(s.clickedAt, at);
        s.clicks += 1;
      }
      break;
    case 'bounced': {
      const type = e.bounceType ?? 'soft';
      if (bounceWins(s, type, at, e.detail ?? '')) {
        s.bouncedAt = at;
        s.bounceType = type;
        s.bounceDetail = e.detail ?? null;
      }
      break;
    }
    case 'complained':
      s.complainedAt = minDate(s.complainedAt, at);
      break;
    case 'failed':
      if (s.failedAt === null || at < s.failedAt || (at.getTime() === s.failedAt.getTime() && (e.detail ?? '') < (s.failDetail ?? ''))) {
        s.failedAt = at;
        s.failDetail = e.detail ?? null;
      }
      break;
    case 'delivery_delayed':
      break;
  }

  const before = s.status;
  const p = PRECEDENCE.get(precedenceKey(e.type, e.bounceType));
  if (p?.rank != null && p.status && !machine && EVENT_BASE_STATUSES.has(s.status)) {
    if (p.rank > statusRank(s.status, state.bounceType)) s.status = p.status;
  }
  const latest = s.timeline.length ? s.timeline[s.timeline.length - 1]!.at : null;
  const item: TimelineItem = {
    id: key,
    type: e.type,
    at,
    receivedAt: new Date(e.receivedAt),
    provider: e.provider,
    changedStatus: s.status !== before,
    ...(machine ? { machine: true } : {}),
    ...(latest && at < latest ? { late: true } : {}),
    ...(e.detail !== undefined ? { detail: e.detail } : {}),
    ...(e.url !== undefined ? { url: e.url } : {}),
    ...(e.bounceType !== undefined ? { bounceType: e.bounceType } : {}),
  };
  s.timeline = [...s.timeline, item].sort(byTimeThenId).slice(-TIMELINE_MAX);
  return s;
}

/** Folds events in the given order (see {@link applyEvent}). */
export function applyEvents(state: EventFields, events: readonly DeliveryEvent[], ctx: ReduceContext): EventFields {
  return events.reduce((s, e) => applyEvent(s, e, ctx), state);
}

/**
 * Folds events into an entry whose hand-off ended unknown (`send_failed`, EHANDOFF_UNKNOWN: the
 * final dot went out and no answer was recorded). Any event for its message (delivered, bounced,
 * opened, …) is the provider's word that the email left, so the fold starts from `sent`, and the
 * first event's timeline item says it resolved the unknown outcome. Like {@link applyEvents}, the
 * result does not depend on the order or duplication of the events.
 */
export function resolveUnknownHandOff(state: EventFields, events: readonly DeliveryEvent[], ctx: ReduceContext): EventFields {
  const after = applyEvents({ ...state, status: 'sent' }, events, ctx);
  // The earliest event of the batch that settled it stands for the proof.
  const first = after.timeline.find((item) => !state.eventIds.includes(item.id)) ?? after.timeline[0];
  if (!first) return after;
  return {
    ...after,
    timeline: after.timeline.map((item) => (item === first ? { ...item, changedStatus: true, resolvedHandOff: true } : item)),
  };
}

/** True for events that put the recipient on the suppression list. */
export function suppresses(e: Pick<DeliveryEvent, 'type' | 'bounceType'>): 'hard_bounce' | 'complaint' | null {
  if (e.type === 'complained') return 'complaint';
  if (e.type === 'bounced' && e.bounceType === 'hard') return 'hard_bounce';
  return null;
}
