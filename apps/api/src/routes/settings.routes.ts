import { Router } from 'express';
import { Job } from 'bullmq';
import { EmailSettingsInput, newId, TestSendRequest, workspaceVersionKey, type SendEmailJob } from '@mailroom/shared';
import type { ApiDeps } from '../app';
import { HttpError, parseOr400 } from '../http-error';

const POLL_MS = 100;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Custom email settings (admin) and the "send a test email" check. Every change bumps a
 * version in Redis so workers rebuild the workspace's transport on their next send.
 */
export function settingsRoutes(deps: ApiDeps): Router {
  const router = Router();
  const admin = deps.requireKey('admin');
  const bumpVersion = (workspaceId: string) => deps.redis.incr(workspaceVersionKey(deps.config.queuePrefix, 'settings', workspaceId));

  router.get('/v1/settings/email', admin, async (req, res) => {
    const settings = await deps.settings.getPublic(req.apiKey!.workspaceId);
    res.json({ connected: settings !== null, settings });
  });

  router.put('/v1/settings/email', admin, async (req, res) => {
    const input = parseOr400(EmailSettingsInput, req.body);
    const workspaceId = req.apiKey!.workspaceId;
    const settings = await deps.settings.put(workspaceId, input);
    await bumpVersion(workspaceId);
    deps.log.info({ workspaceId, kind: input.kind, keyId: req.apiKey!.keyId }, 'email settings changed');
    await deps.activity.record({
      workspaceId,
      action: 'settings.changed',
      actorKeyId: req.apiKey!.keyId,
      target: 'email',
      details: { kind: input.kind, from: input.from },
    });
    res.json({ connected: true, settings });
  });

  router.delete('/v1/settings/email', admin, async (req, res) => {
    const workspaceId = req.apiKey!.workspaceId;
    const removed = await deps.settings.remove(workspaceId);
    await bumpVersion(workspaceId);
    if (removed) {
      deps.log.info({ workspaceId, keyId: req.apiKey!.keyId }, 'email settings disconnected');
      await deps.activity.record({
        workspaceId,
        action: 'settings.disconnected',
        actorKeyId: req.apiKey!.keyId,
        target: 'email',
        details: null,
      });
    }
    res.status(204).end();
  });

  router.post('/v1/settings/email/test', admin, async (req, res) => {
    const { to } = parseOr400(TestSendRequest, req.body);
    const workspaceId = req.apiKey!.workspaceId;
    const connected = (await deps.settings.getPublic(workspaceId)) !== null;
    const emailId = newId('em');
    const job: SendEmailJob = {
      emailId,
      workspaceId,
      kind: 'test',
      type: 'other',
      createdAt: new Date().toISOString(),
      content: {
        to,
        subject: 'Mailroom test email',
        text: `This is a test email from Mailroom. If you can read it, your ${connected ? 'custom email settings work' : 'workspace can send email'}.`,
        html: `<p>This is a test email from Mailroom.</p><p>If you can read it, your ${connected ? 'custom email settings work' : 'workspace can send email'}.</p>`,
      },
    };
    // A test answers now: one attempt, ahead of the regular queue.
    await deps.sendQueue.add('test', job, { jobId: emailId, attempts: 1, priority: 1 });
    await deps.activity.record({
      workspaceId,
      action: 'settings.test_sent',
      actorKeyId: req.apiKey!.keyId,
      target: emailId,
      details: { to },
    });

    const deadline = Date.now() + deps.config.send.testSendTimeoutMs;
    while (Date.now() < deadline) {
      const state = await deps.sendQueue.getJobState(emailId);
      if (state === 'completed' || state === 'failed') {
        const finished = await Job.fromId(deps.sendQueue, emailId);
        const entry = await deps.logs.findById(workspaceId, emailId).catch(() => null);
        if (state === 'completed') {
          res.json({
            ok: true,
            id: emailId,
            status: 'sent',
            sendMethod: 'test',
            transport: connected ? 'custom' : 'managed',
            from: entry?.from ?? null,
            providerMessageId: entry?.providerMessageId ?? finished?.returnvalue?.providerMessageId ?? null,
          });
        } else {
          const reason = finished?.failedReason ?? '';
          res.json({
            ok: false,
            id: emailId,
            status: 'send_failed',
            sendMethod: 'test',
            transport: connected ? 'custom' : 'managed',
            errorCode: entry?.errorCode ?? reason.split(':')[0] ?? 'EUNKNOWN',
            errorHint: entry?.errorHint ?? null,
            error: entry?.error ?? reason,
          });
        }
        return;
      }
      await sleep(POLL_MS);
    }
    throw new HttpError(
      504,
      'test_send_timeout',
      `The test email ${emailId} did not finish within ${deps.config.send.testSendTimeoutMs} ms; is a worker running?`,
    );
  });
  return router;
}
