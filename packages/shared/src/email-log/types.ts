import type { BounceType, TimelineItem } from './events/events';
import type { EmailStatus, EmailType, MessageContent, Reference, SendMethodName } from '../schemas';

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

/** Rendered content kept for resends (`email_contents`), apart from the entries so list reads stay light. */
export interface EmailContentDoc extends MessageContent {
  _id: string;
  workspaceId: string;
  /** Its entry's latest attempt (`sentAt`), so retention removes the two by the same ranges of time. */
  sentAt: Date;
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
