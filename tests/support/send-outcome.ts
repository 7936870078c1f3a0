import type { SendOutcome } from '@mailroom/shared';

/**
 * A send outcome as the worker records it (apps/worker/src/send-email.worker.ts): an accepted
 * managed send of a small invoice unless `fields` say otherwise. For tests and benches that feed
 * the outcome path without sending.
 */
export function sendOutcome(fields: Pick<SendOutcome, 'id' | 'workspaceId'> & Partial<SendOutcome>): SendOutcome {
  const at = new Date().toISOString();
  const recipient = fields.recipient ?? 'a@example.com';
  const subject = fields.subject ?? 'Invoice';
  return {
    status: 'sent',
    recipient,
    type: 'invoice',
    from: 'Mailroom <bench@mailroom.test>',
    subject,
    sendMethod: 'managed',
    messageId: `<${fields.id}@mailroom.test>`,
    providerMessageId: null,
    error: null,
    errorCode: null,
    errorHint: null,
    attempts: 1,
    nextRetryAt: null,
    reference: null,
    metadata: null,
    resendOf: null,
    createdAt: at,
    sentAt: at,
    content: { to: recipient, subject, text: 'x' },
    ...fields,
  };
}
