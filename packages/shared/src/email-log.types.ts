import type { BounceType, TimelineItem } from './email-events';
import type { EntryBuckets } from './email-log-buckets';
import type { EmailStatus, EmailType, MessageContent, Reference, SendMethodName } from './schemas';

/*
 * The documents of the email log, and what the send path and retention exchange with the
 * repository (email-log.repository.ts).
 */

/** One email, one document, in the logs database (`email_logs`). */
export interface EmailLogDoc {
  _id: string;
  workspaceId: string;
  recipient: string;
  status: EmailStatus;
  type: EmailType;
  from: string;
  subject: string;
  error: string | null;
  errorCode: string | null;
  errorHint: string | null;
  sendMethod: SendMethodName;
  /** Our Message-ID header (`<emailId@domain>`). */
  messageId: string;
  /** The id the SMTP server gave in its reply ("queued as …"), when it gave one. */
  providerMessageId: string | null;
  attempts: number;
  nextRetryAt: Date | null;
  reference: Reference | null;
  metadata: Record<string, unknown> | null;
  resendOf: string | null;
  resendCount: number;
  lastResentAt: Date | null;
  resends: string[];
  createdAt: Date;
  /** When the email left Mailroom, or the time of the attempt that produced the current error. */
  sentAt: Date;
  /** UTC day and hour of `sentAt`, and the workspace's buckets (email-log-buckets.ts, `entryBuckets`). */
  day: EntryBuckets['day'];
  hour: EntryBuckets['hour'];
  wsMonth: EntryBuckets['wsMonth'];
  wsDay: EntryBuckets['wsDay'];
  wsHour: EntryBuckets['wsHour'];
  deliveredAt: Date | null;
  openedAt: Date | null;
  opens: number;
  clickedAt: Date | null;
  clicks: number;
  /** Delivery-event fields (see email-events.ts); absent on entries written before events existed. */
  bouncedAt?: Date | null;
  bounceType?: BounceType | null;
  bounceDetail?: string | null;
  complainedAt?: Date | null;
  failedAt?: Date | null;
  failDetail?: string | null;
  /** The entry's delivery events by provider time, bounded (TIMELINE_MAX). */
  timeline?: TimelineItem[];
  /** Applied event ids (de-duplication) and the version guarding the event worker's writes. */
  eventIds?: string[];
  eventsVersion?: number;
  updatedAt: Date;
}

/** Rendered content kept for resends (`email_contents`), apart from the entries so list scans stay light. */
export interface EmailContentDoc extends MessageContent {
  _id: string;
  workspaceId: string;
  sentAt: Date;
  /** The entry's buckets, so retention removes content bucket by bucket with its entries. */
  day: string;
  hour: string;
}

/** What one retention step removed. */
export interface BucketDeleteResult {
  removed: number;
  contentRemoved: number;
  /** Nothing matching is left in the bucket. */
  exhausted: boolean;
}

/** A day of the directory that retention works through, with its hours (`h00`…) oldest first. */
export interface RetentionDay {
  day: string;
  total: number;
  hours: Array<{ key: string; hour: string; count: number }>;
  /** The partitions that may hold its entries. */
  parts: string[];
}

/** What the worker reports after one send attempt. */
export interface SendOutcome {
  id: string;
  workspaceId: string;
  status: Extract<EmailStatus, 'queued' | 'sent' | 'send_failed'>;
  recipient: string;
  type: EmailType;
  from: string;
  subject: string;
  sendMethod: SendMethodName;
  messageId: string;
  providerMessageId: string | null;
  error: string | null;
  errorCode: string | null;
  errorHint: string | null;
  attempts: number;
  nextRetryAt: string | null;
  reference: Reference | null;
  metadata: Record<string, unknown> | null;
  resendOf: string | null;
  createdAt: string;
  sentAt: string;
  content: MessageContent;
}
