import type { Filter } from 'mongodb';
import type { EmailLogDoc } from '../repository';
import { escapeRegex, type EmailLogCursor, type EmailLogFilter } from './query';

/**
 * The MongoDB filter of the email-log list and export: equalities on the indexed fields of
 * repository.ts first (a single value as a plain equality, an exact index prefix), then ranges.
 */
export function emailLogMongoFilter(workspaceId: string, f: EmailLogFilter, after?: EmailLogCursor): Filter<EmailLogDoc> {
  const q: Record<string, unknown> = { workspaceId };
  const and: Record<string, unknown>[] = [];
  if (f.statuses?.length) q.status = f.statuses.length === 1 ? f.statuses[0] : { $in: f.statuses };
  if (f.types?.length) q.type = f.types.length === 1 ? f.types[0] : { $in: f.types };
  if (f.sendMethod) q.sendMethod = f.sendMethod;
  if (f.recipient) {
    if ('exact' in f.recipient) q.recipient = f.recipient.exact;
    // An anchored, case-sensitive regex is an index range scan in MongoDB.
    else if (f.recipient.prefix) q.recipient = { $regex: `^${escapeRegex(f.recipient.prefix)}` };
  }
  if (f.reference?.kind) q['reference.kind'] = f.reference.kind;
  if (f.reference?.id) q['reference.id'] = f.reference.id;
  if (f.since || f.until) q.sentAt = { ...(f.since ? { $gte: f.since } : {}), ...(f.until ? { $lte: f.until } : {}) };
  if (f.contains) {
    const rx = { $regex: escapeRegex(f.contains), $options: 'i' };
    and.push({ $or: [{ recipient: rx }, { subject: rx }] });
  }
  if (after) {
    // Strictly after the cursor in (sentAt desc, _id desc) order.
    and.push({ $or: [{ sentAt: { $lt: after.sentAt } }, { sentAt: after.sentAt, _id: { $lt: after.id } }] });
  }
  if (and.length) q.$and = and;
  return q as Filter<EmailLogDoc>;
}
