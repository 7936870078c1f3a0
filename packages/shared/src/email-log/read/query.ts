import { z } from 'zod';
import { EMAIL_STATUSES, EMAIL_TYPES, SEND_METHODS, type EmailStatus, type EmailType, type SendMethodName } from '../../schemas';

/**
 * Query parameters of the email-log list, its CSV export and its stats, parsed with zod at the
 * HTTP boundary, and the opaque keyset cursor of the list.
 */

/** `status=sent,bounced` and `status=sent&status=bounced` both mean "one of these". */
const multi = <T extends readonly [string, ...string[]]>(values: T) =>
  z.preprocess(
    (v) =>
      (Array.isArray(v) ? v : [v])
        .flatMap((s) => String(s).split(','))
        .map((s) => s.trim())
        .filter(Boolean),
    // Checked as a whole so that a 400 names the parameter (`query.status`), not an index in it.
    z
      .array(z.string())
      .min(1, 'at least one value')
      .max(values.length)
      .refine((list) => list.every((v) => (values as readonly string[]).includes(v)), {
        message: `each value one of: ${values.join(', ')}`,
      })
      .transform((list) => list as Array<T[number]>)
      .describe(`comma-separated or repeated, each one of: ${values.join(', ')}`),
  );

const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/;
/** A calendar day (`2026-11-20`, taken as UTC) or an ISO datetime with offset. */
const DateOrDateTime = z.union([z.iso.date(), z.iso.datetime({ offset: true })]);

/** A single value: a repeated parameter is a mistake we name rather than guess at. */
const one = <S extends z.ZodType>(schema: S) => z.preprocess((v) => (Array.isArray(v) && v.length === 1 ? v[0] : v), schema);

const NO_CONTROL = /^[^\r\n\0]*$/;

/** Filters shared by the list, the export and (partly) the stats. */
export const EmailLogFilterQuery = z.object({
  status: multi(EMAIL_STATUSES).optional(),
  type: multi(EMAIL_TYPES).optional(),
  sendMethod: one(z.enum(SEND_METHODS)).optional(),
  /** Exact address, or a prefix when it ends with `*`. */
  recipient: one(z.string().min(1).max(320).regex(NO_CONTROL, 'must not contain line breaks')).optional(),
  /** Case-insensitive "contains" over recipient and subject. */
  q: one(z.string().min(1).max(200).regex(NO_CONTROL, 'must not contain line breaks')).optional(),
  /** On `sentAt`; a day means from its start (UTC). */
  since: one(DateOrDateTime).optional(),
  /** On `sentAt`; a day means up to its end (UTC), a datetime is inclusive. */
  until: one(DateOrDateTime).optional(),
  referenceKind: one(z.string().min(1).max(64).regex(NO_CONTROL)).optional(),
  referenceId: one(z.string().min(1).max(200).regex(NO_CONTROL)).optional(),
});

export const EmailLogListQuery = EmailLogFilterQuery.extend({
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: one(z.string().min(1).max(500)).optional(),
});
export type EmailLogListQuery = z.infer<typeof EmailLogListQuery>;

/** `GET /v1/email-logs/stats`: whole UTC days, at most about a year. */
export const EmailLogStatsQuery = z
  .object({
    since: one(z.iso.date()).optional(),
    until: one(z.iso.date()).optional(),
  })
  .refine((v) => !v.since || !v.until || v.since <= v.until, { message: 'since must not be after until', path: ['since'] });

/** What the repository filters by, after parsing. */
export interface EmailLogFilter {
  statuses?: EmailStatus[];
  types?: EmailType[];
  sendMethod?: SendMethodName;
  recipient?: { exact: string } | { prefix: string };
  contains?: string;
  since?: Date;
  /** Inclusive upper bound on sentAt. */
  until?: Date;
  reference?: { kind?: string; id?: string };
}

/** Escapes a literal for use inside a regular expression. */
export function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

const DAY_MS = 86_400_000;

/** Turns parsed query parameters into repository filters. */
export function toEmailLogFilter(q: z.infer<typeof EmailLogFilterQuery>): EmailLogFilter {
  const f: EmailLogFilter = {};
  if (q.status) f.statuses = [...new Set(q.status)];
  if (q.type) f.types = [...new Set(q.type)];
  if (q.sendMethod) f.sendMethod = q.sendMethod;
  if (q.recipient) {
    f.recipient = q.recipient.endsWith('*') ? { prefix: q.recipient.slice(0, -1) } : { exact: q.recipient };
  }
  if (q.q) f.contains = q.q;
  if (q.since) f.since = new Date(DATE_ONLY.test(q.since) ? `${q.since}T00:00:00.000Z` : q.since);
  if (q.until) {
    f.until = DATE_ONLY.test(q.until) ? new Date(Date.parse(`${q.until}T00:00:00.000Z`) + DAY_MS - 1) : new Date(q.until);
  }
  if (q.referenceKind || q.referenceId) {
    f.reference = { ...(q.referenceKind ? { kind: q.referenceKind } : {}), ...(q.referenceId ? { id: q.referenceId } : {}) };
  }
  return f;
}

/** Position after the last item of a page: the keyset (sentAt, _id) of the list order. */
export interface EmailLogCursor {
  sentAt: Date;
  id: string;
}

const CursorPayload = z.object({ v: z.literal(1), s: z.number().int().min(0).max(8.64e15), i: z.string().min(1).max(100) }).strict();

/** Opaque to clients: base64url of a small versioned JSON object. */
export function encodeEmailLogCursor(c: EmailLogCursor): string {
  return Buffer.from(JSON.stringify({ v: 1, s: c.sentAt.getTime(), i: c.id })).toString('base64url');
}

/** Null for anything that is not a cursor we made (the route answers 400). */
export function decodeEmailLogCursor(raw: string): EmailLogCursor | null {
  if (!/^[A-Za-z0-9_-]+$/.test(raw)) return null;
  try {
    const parsed = CursorPayload.safeParse(JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')));
    return parsed.success ? { sentAt: new Date(parsed.data.s), id: parsed.data.i } : null;
  } catch {
    return null;
  }
}
