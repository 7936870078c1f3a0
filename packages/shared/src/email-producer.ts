import type { z } from 'zod';
import { newId } from './ids';
import type { SendEmailQueue } from './queues';
import { attachmentsBytes, SendEmailRequest, type SendEmailJob } from './schemas';

/** What a caller may pass: the schema's input (before defaults and trimming). */
export type SendEmailInput = z.input<typeof SendEmailRequest>;

export interface ProducerFieldError {
  /** Where the problem is, e.g. `request.to` or `requests[3].attachments[0].content`. */
  path: string;
  message: string;
}

/** Bad input: nothing was queued. `fields` names every wrong field of every request. */
export class ProducerValidationError extends Error {
  override readonly name = 'ProducerValidationError';
  constructor(readonly fields: ProducerFieldError[]) {
    const first = fields[0]!;
    super(`${first.path}: ${first.message}${fields.length > 1 ? ` (and ${fields.length - 1} more)` : ''}`);
  }
}

/**
 * Redis failed while queueing. BullMQ pipelines a bulk add without a transaction, so the chunk
 * that failed may be partly queued: `queued` are in the queue, `uncertain` may be, `notQueued`
 * are not. Ids are fresh on every call, so calling again with the same requests sends the
 * `queued` ones twice.
 */
export class ProducerEnqueueError extends Error {
  override readonly name = 'ProducerEnqueueError';
  constructor(
    readonly queued: string[],
    readonly uncertain: string[],
    readonly notQueued: string[],
    options: { cause: unknown },
  ) {
    super(`queueing failed after ${queued.length} emails: ${String((options.cause as Error)?.message ?? options.cause)}`, options);
  }
}

/** The queue job for a parsed request: the one place the API route and the producer build it. */
export function buildSendEmailJob(body: SendEmailRequest, workspaceId: string, emailId: string, now = new Date()): SendEmailJob {
  return {
    emailId,
    workspaceId,
    kind: 'send',
    type: body.type,
    createdAt: now.toISOString(),
    content: {
      to: body.to,
      ...(body.cc ? { cc: body.cc } : {}),
      ...(body.bcc ? { bcc: body.bcc } : {}),
      ...(body.replyTo ? { replyTo: body.replyTo } : {}),
      subject: body.subject,
      ...(body.html !== undefined ? { html: body.html } : {}),
      ...(body.text !== undefined ? { text: body.text } : {}),
      ...(body.headers ? { headers: body.headers } : {}),
      ...(body.attachments ? { attachments: body.attachments } : {}),
      ...(body.tracking !== undefined ? { tracking: body.tracking } : {}),
    },
    ...(body.reference ? { reference: body.reference } : {}),
    ...(body.metadata ? { metadata: body.metadata } : {}),
  };
}

/** The decoded attachment bytes when they exceed `maxBytes`, else null. The API answers 413 on it. */
export function attachmentsOverLimit(body: SendEmailRequest, maxBytes: number): number | null {
  const size = attachmentsBytes(body.attachments);
  return size > maxBytes ? size : null;
}

/** `['attachments', 0, 'content']` under `requests[3]` → `requests[3].attachments[0].content`. */
function joinPath(prefix: string, path: readonly PropertyKey[]): string {
  return path.reduce<string>((out, p) => (typeof p === 'number' ? `${out}[${p}]` : `${out}.${String(p)}`), prefix);
}

export interface EmailProducerOptions {
  /** The API's `MAX_ATTACHMENTS_BYTES`: the same cap on decoded attachment bytes per email. */
  maxAttachmentsBytes: number;
  /** Jobs per `addBulk` call, i.e. per Redis round trip (default 500). */
  chunkSize?: number;
}

export interface EmailProducer {
  /** Validates and queues one email; resolves once it is in Redis. */
  send(workspaceId: string, request: SendEmailInput): Promise<{ id: string; status: 'queued' }>;
  /**
   * Validates every request first (a bad one throws a ProducerValidationError naming
   * `requests[i].<field>` and nothing is queued), then queues them in chunks. Ids are in the
   * order of `requests`.
   */
  sendMany(workspaceId: string, requests: readonly SendEmailInput[]): Promise<string[]>;
}

/**
 * Queues emails from trusted in-process code (invoices, digests, automations) onto the queue
 * the API fills, with the API's validation: the `SendEmailRequest` schema and the attachment
 * cap. It does not check API keys, rate limits or Idempotency-Keys, nor that the workspace
 * exists: the caller is trusted to pass the right `workspaceId`. The worker sends for any id
 * (a workspace without settings of its own uses the managed transport), so a wrong id sends
 * mail logged under a workspace nobody sees.
 *
 * `queue` is the send queue from `createSendEmailQueue` (its default job options, attempts
 * and backoff included, apply as they do to the API's jobs); the caller owns and closes it.
 */
export function createEmailProducer(queue: SendEmailQueue, opts: EmailProducerOptions): EmailProducer {
  const chunkSize = opts.chunkSize ?? 500;
  if (!Number.isInteger(chunkSize) || chunkSize < 1) throw new RangeError(`chunkSize must be a positive integer, got ${chunkSize}`);
  if (!(opts.maxAttachmentsBytes >= 0)) throw new RangeError(`maxAttachmentsBytes must be a number ≥ 0, got ${opts.maxAttachmentsBytes}`);

  const checkWorkspace = (workspaceId: unknown) => {
    if (typeof workspaceId !== 'string' || !/^[\x21-\x7e]{1,200}$/.test(workspaceId))
      throw new ProducerValidationError([{ path: 'workspaceId', message: 'must be a workspace id' }]);
  };

  /** Parses one request, adding its problems to `errors`; null when it has any. */
  const parse = (input: unknown, where: string, errors: ProducerFieldError[]): SendEmailRequest | null => {
    const r = SendEmailRequest.safeParse(input);
    if (!r.success) {
      for (const i of r.error.issues) errors.push({ path: joinPath(where, i.path), message: i.message });
      return null;
    }
    const size = attachmentsOverLimit(r.data, opts.maxAttachmentsBytes);
    if (size !== null) {
      errors.push({ path: `${where}.attachments`, message: `at most ${opts.maxAttachmentsBytes} bytes in total (got ${size})` });
      return null;
    }
    return r.data;
  };

  return {
    async send(workspaceId, request) {
      checkWorkspace(workspaceId);
      const errors: ProducerFieldError[] = [];
      const body = parse(request, 'request', errors);
      if (!body) throw new ProducerValidationError(errors);
      const emailId = newId('em');
      try {
        await queue.add('send', buildSendEmailJob(body, workspaceId, emailId), { jobId: emailId });
      } catch (cause) {
        throw new ProducerEnqueueError([], [emailId], [], { cause });
      }
      return { id: emailId, status: 'queued' };
    },

    async sendMany(workspaceId, requests) {
      checkWorkspace(workspaceId);
      if (!Array.isArray(requests)) throw new ProducerValidationError([{ path: 'requests', message: 'must be an array' }]);
      const errors: ProducerFieldError[] = [];
      const bodies = requests.map((r, i) => parse(r, `requests[${i}]`, errors));
      if (errors.length) throw new ProducerValidationError(errors);

      const now = new Date();
      const jobs = (bodies as SendEmailRequest[]).map((b) => buildSendEmailJob(b, workspaceId, newId('em'), now));
      const ids = jobs.map((j) => j.emailId);
      for (let start = 0; start < jobs.length; start += chunkSize) {
        const chunk = jobs.slice(start, start + chunkSize);
        try {
          await queue.addBulk(chunk.map((job) => ({ name: 'send', data: job, opts: { jobId: job.emailId } })));
        } catch (cause) {
          const end = start + chunk.length;
          throw new ProducerEnqueueError(ids.slice(0, start), ids.slice(start, end), ids.slice(end), { cause });
        }
      }
      return ids;
    },
  };
}
