import { z } from 'zod';

/** Email types, as the product names them. */
export const EMAIL_TYPES = [
  'invoice',
  'proposal',
  'contract',
  'task_notification',
  'scheduler_confirmation',
  'digest',
  'automation',
  'other',
] as const;
export type EmailType = (typeof EMAIL_TYPES)[number];

/**
 * Statuses of a log entry. `queued` is the transitional state of an email that has not been
 * handed off yet (waiting, or between retries with its latest error); every other value is the
 * product's status column.
 */
export const EMAIL_STATUSES = [
  'queued',
  'sent',
  'delivered',
  'opened',
  'clicked',
  'bounced',
  'complained',
  'send_failed',
  'failed',
] as const;
export type EmailStatus = (typeof EMAIL_STATUSES)[number];

/** The statuses of an email that left: all but `queued` (not yet) and `send_failed` (never). */
export const HANDED_OFF_STATUSES: readonly EmailStatus[] = EMAIL_STATUSES.filter((s) => s !== 'queued' && s !== 'send_failed');

export const STATUS_LABELS: Readonly<Record<EmailStatus, string>> = {
  queued: 'Queued',
  sent: 'Sent',
  delivered: 'Delivered',
  opened: 'Opened',
  clicked: 'Clicked',
  bounced: 'Bounced',
  complained: 'Complained',
  send_failed: 'Send failed',
  failed: 'Failed',
};

export const SEND_METHODS = ['managed', 'custom', 'test'] as const;
export type SendMethodName = (typeof SEND_METHODS)[number];

/** Headers a caller may not set: the transport and the log own them. */
export const RESERVED_HEADERS = new Set([
  'from',
  'sender',
  'to',
  'cc',
  'bcc',
  'reply-to',
  'subject',
  'date',
  'message-id',
  'x-mailroom-id',
  'mime-version',
  'content-type',
  'content-transfer-encoding',
  'content-disposition',
  'return-path',
  'received',
  'dkim-signature',
  'authentication-results',
  'list-unsubscribe',
  'list-unsubscribe-post',
]);

const NO_CRLF = /^[^\r\n\0]*$/;
const noCrlf = (what: string) => z.string().regex(NO_CRLF, `${what} must not contain line breaks or NUL`);

/** A single bare address (no display name): what the log's recipient column holds. */
export const EmailAddress = z
  .string()
  .max(320)
  .regex(NO_CRLF, 'must not contain line breaks')
  .pipe(z.email('must be a valid email address'))
  .transform((s) => s.trim());

const AddressList = z.union([EmailAddress, z.array(EmailAddress).max(50)]).transform((v) => (Array.isArray(v) ? v : [v]));

const HeaderName = z
  .string()
  .min(1)
  .max(100)
  .regex(/^[!-9;-~]+$/, 'header names are printable ASCII without spaces or colons')
  .refine((n) => !RESERVED_HEADERS.has(n.toLowerCase()), { message: 'this header is set by Mailroom and cannot be overridden' });

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

export const Attachment = z.object({
  filename: noCrlf('filename').min(1).max(255),
  content: z
    .string()
    .max(60 * 1024 * 1024)
    .transform((s) => s.replace(/\s+/g, ''))
    .refine((s) => s.length % 4 === 0 && BASE64.test(s), { message: 'content must be base64' }),
  contentType: z
    .string()
    .max(255)
    .regex(/^[\w.+-]+\/[\w.+-]+$/, 'contentType must look like type/subtype')
    .optional(),
});
export type Attachment = z.infer<typeof Attachment>;

export const Reference = z.object({
  kind: z
    .string()
    .min(1)
    .max(64)
    .regex(/^[a-z][a-z0-9_-]*$/, 'kind is lower-case letters, digits, _ or -'),
  id: z.string().min(1).max(200).regex(NO_CRLF, 'id must not contain line breaks'),
});
export type Reference = z.infer<typeof Reference>;

const MetadataValue = z.union([z.string().max(1000), z.number().finite(), z.boolean(), z.null()]);
const Metadata = z
  .record(
    z
      .string()
      .min(1)
      .max(64)
      .regex(/^[A-Za-z0-9_-]+$/, 'metadata keys are letters, digits, _ or -'),
    MetadataValue,
  )
  .refine((m) => Object.keys(m).length <= 50, { message: 'at most 50 metadata keys' });

/** Body of `POST /v1/emails`. */
export const SendEmailRequest = z
  .object({
    to: EmailAddress,
    type: z.enum(EMAIL_TYPES),
    subject: noCrlf('subject').min(1).max(998),
    html: z
      .string()
      .max(5 * 1024 * 1024)
      .optional(),
    text: z
      .string()
      .max(5 * 1024 * 1024)
      .optional(),
    cc: AddressList.optional(),
    bcc: AddressList.optional(),
    replyTo: EmailAddress.optional(),
    headers: z
      .record(HeaderName, noCrlf('header values').max(2000))
      .refine((h) => Object.keys(h).length <= 50, { message: 'at most 50 headers' })
      .optional(),
    attachments: z.array(Attachment).max(20).optional(),
    reference: Reference.optional(),
    metadata: Metadata.optional(),
    /** Open and click tracking for this email (default on, unless the workspace turned it off). */
    tracking: z.boolean().optional(),
  })
  .strict()
  .refine((b) => b.html !== undefined || b.text !== undefined, {
    message: 'html or text is required',
    path: ['html'],
  });
export type SendEmailRequest = z.infer<typeof SendEmailRequest>;

/** Decoded size of base64 attachments, for the size cap. */
export function attachmentsBytes(attachments: readonly Attachment[] | undefined): number {
  let total = 0;
  for (const a of attachments ?? []) {
    const padding = a.content.endsWith('==') ? 2 : a.content.endsWith('=') ? 1 : 0;
    total += (a.content.length / 4) * 3 - padding;
  }
  return total;
}

/** The rendered message kept for sending and resending. */
export const MessageContent = z.object({
  to: z.string(),
  cc: z.array(z.string()).optional(),
  bcc: z.array(z.string()).optional(),
  replyTo: z.string().optional(),
  subject: z.string(),
  html: z.string().optional(),
  text: z.string().optional(),
  headers: z.record(z.string(), z.string()).optional(),
  attachments: z.array(Attachment).optional(),
  /** false: no pixel and no link rewriting (kept with the content so a resend does the same). */
  tracking: z.boolean().optional(),
});
export type MessageContent = z.infer<typeof MessageContent>;

/** Data of a job on the send-email queue (job id = email id). */
export const SendEmailJob = z.object({
  emailId: z.string(),
  workspaceId: z.string(),
  kind: z.enum(['send', 'test']),
  type: z.enum(EMAIL_TYPES),
  createdAt: z.iso.datetime(),
  content: MessageContent,
  reference: Reference.optional(),
  metadata: z.record(z.string(), z.unknown()).optional(),
  resendOf: z.string().optional(),
});
export type SendEmailJob = z.infer<typeof SendEmailJob>;

/** Body of `POST /v1/workspaces`. */
export const CreateWorkspaceRequest = z.object({ name: noCrlf('name').trim().min(1).max(200) }).strict();

const Host = z
  .string()
  .min(1)
  .max(253)
  .regex(/^[A-Za-z0-9.-]+$|^\[[0-9a-fA-F:.]+\]$/, 'host must be a hostname or an IP address');

const FromAddress = z
  .string()
  .max(400)
  .regex(NO_CRLF, 'from must not contain line breaks')
  .refine((s) => /^[^<>]*<[^<>@\s]+@[^<>@\s]+>$|^[^<>@\s]+@[^<>@\s]+$/.test(s.trim()), {
    message: 'from must be an address or "Name <address>"',
  });

/** Body of `PUT /v1/settings/email`. Secrets are write-only. */
export const EmailSettingsInput = z.discriminatedUnion('kind', [
  z
    .object({
      kind: z.literal('smtp'),
      host: Host,
      port: z.number().int().min(1).max(65535),
      secure: z.boolean().default(false),
      user: z.string().max(320).regex(NO_CRLF).optional(),
      pass: z.string().max(1000).optional(),
      from: FromAddress,
    })
    .strict(),
  z
    .object({
      kind: z.enum(['google', 'outlook']),
      user: EmailAddress,
      clientId: z.string().min(1).max(500),
      clientSecret: z.string().min(1).max(1000),
      refreshToken: z.string().min(1).max(4000),
      from: FromAddress,
    })
    .strict(),
]);
export type EmailSettingsInput = z.infer<typeof EmailSettingsInput>;

export const TestSendRequest = z.object({ to: EmailAddress }).strict();
