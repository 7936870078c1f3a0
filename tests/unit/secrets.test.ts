import { Writable } from 'node:stream';
import { createLogger, createSecretBox, scrubSecrets } from '@mailroom/shared';

describe('secret box', () => {
  it('when a secret is sealed, then only the same key opens it and the ciphertext does not contain it', () => {
    const box = createSecretBox('key-one-0123456789');
    const sealed = box.seal('hunter2-password');
    expect(sealed).not.toContain('hunter2');
    expect(box.open(sealed)).toBe('hunter2-password');
    expect(box.seal('hunter2-password')).not.toBe(sealed);
    expect(() => createSecretBox('key-two-0123456789').open(sealed)).toThrow();
    expect(() => box.open(sealed.slice(0, -4) + 'AAAA')).toThrow();
  });
});

describe('logger redaction', () => {
  function capture() {
    const lines: string[] = [];
    const stream = new Writable({
      write(chunk, _enc, cb) {
        lines.push(String(chunk));
        cb();
      },
    });
    return { lines, stream };
  }

  it('when secrets appear in fields or messages, then no log line contains them', () => {
    const { lines, stream } = capture();
    const logger = createLogger({ level: 'info', name: 't', destination: stream });
    logger.info(
      { settings: { pass: 'p@ss-secret', host: 'smtp.acme.test' }, clientSecret: 'cs-secret', authorization: 'Bearer mr_admin_abc' },
      'connecting to smtp://me:p@ss-secret@smtp.acme.test with mr_send_abcdef',
    );
    logger.error({ err: new Error('auth failed for smtps://user:hunter2@host') }, 'failed');
    const out = lines.join('\n');
    expect(out).toContain('smtp.acme.test');
    expect(out).not.toMatch(/p@ss-secret|cs-secret|hunter2|mr_admin_abc|mr_send_abcdef/);
  });

  it('when text carries URL credentials or keys, then scrubSecrets removes them', () => {
    expect(scrubSecrets('smtp://u:pw@h:25 mr_admin_XYZ Bearer abc.def')).toBe('smtp://u:***@h:25 mr_admin_*** Bearer ***');
  });
});
