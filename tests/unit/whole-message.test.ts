/**
 * apps/worker/src/transports/whole-message.ts: a message made at once must be the bytes
 * nodemailer's own stream gives for the same compiled tree, and its stream must keep the final
 * dot behind the hand-off hook. Compared with `MimeNode.build()` on generated messages (every
 * shape the send path makes: text, HTML, both, attachments, inline images, non-ASCII names,
 * subjects, headers and file names, long lines), and sent through a real pooled SMTP transport
 * into the SMTP sink both ways.
 */
import { PassThrough, Readable } from 'node:stream';
import nodemailer from 'nodemailer';
import MailComposer from 'nodemailer/lib/mail-composer';
import { BEFORE_FINAL_DOT, installFinalDotGate } from '../../apps/worker/src/transports/final-dot-gate';
import { wholeMessage, WholeMessageStream, type MessageNode } from '../../apps/worker/src/transports/whole-message';
import { startSmtpSink, type SmtpSink } from '../../infra/dev/smtp-sink';
import { seededRandom as rng } from '../../infra/dev/seeded-random';

type Mail = NonNullable<ConstructorParameters<typeof MailComposer>[0]>;

const WORDS = [
  'Invoice',
  'ready',
  ' ',
  '  ',
  '\t',
  '\r\n',
  '\n',
  '.',
  '=',
  'é',
  '€',
  '😀',
  'Grüße',
  'https://x.test/a?b=c&d=e',
  '<p>',
  '</p>',
];

function text(next: () => number, max: number): string {
  const n = Math.floor(next() ** 2 * max);
  let s = '';
  for (let i = 0; i < n; i++) s += WORDS[Math.floor(next() * WORDS.length)];
  return s;
}
const pick = <T>(next: () => number, xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]!;
const bytes = (next: () => number, n: number) => Buffer.from(Array.from({ length: n }, () => Math.floor(next() * 256)));

/** A message as the send path builds it, drawn from `next`. */
function mailFrom(next: () => number, i: number): Mail {
  const html =
    next() < 0.8 ? `<p>${text(next, 60)}</p>${next() < 0.5 ? `<img src="https://t.test/o/${'a'.repeat(70)}.gif" alt="">` : ''}` : undefined;
  const plain = !html || next() < 0.5 ? text(next, 60) || 'x' : undefined;
  const attachments = Array.from({ length: next() < 0.6 ? 0 : 1 + Math.floor(next() * 3) }, (_, j) =>
    pick(next, [
      { filename: `invoice-${j}.pdf`, content: bytes(next, Math.floor(next() * 3000)) },
      { filename: `Rechnung ${j} für März.txt`, content: Buffer.from(text(next, 40) || 'x').toString('base64'), encoding: 'base64' },
      { filename: `notes-${j}.txt`, content: `plain ${j}\r\n`, contentType: 'text/plain' },
      { filename: `logo-${j}.png`, content: bytes(next, 200), cid: `logo${j}@mailroom.test` },
      // Quoted-printable outside text: a lone CR or LF is data there, and encoded.
      {
        filename: `data-${j}.json`,
        content: `{"a":1}\r{"b":2}\n${text(next, 20)}`,
        contentType: 'application/json',
        contentTransferEncoding: 'quoted-printable',
      },
    ]),
  );
  return {
    from: pick(next, [
      'Mailroom <bench@mailroom.test>',
      '"Acme, Inc." <billing@acme.test>',
      'Zoë Ñandú <zoe@acme.test>',
      'plain@acme.test',
    ]),
    to: pick(next, ['someone@example.com', 'Jörg <jorg@example.com>', 'delivered+7@simulator.mailroom.test']),
    ...(next() < 0.3 ? { cc: ['a@example.com', 'Bea <b@example.com>'] } : {}),
    ...(next() < 0.3 ? { bcc: 'hidden@example.com' } : {}),
    ...(next() < 0.3 ? { replyTo: 'Support <support@acme.test>' } : {}),
    subject: pick(next, [`Invoice ${i}`, `Rechnung ${i} für März – fällig`, `${'Long subject '.repeat(12)}${i}`, `😀 ${i}`]),
    messageId: `<em_${i}@mailroom.test>`,
    headers: {
      'X-Mailroom-Id': `em_${i}`,
      ...(next() < 0.5 ? { 'List-Unsubscribe': '<https://acme.test/u/1>, <mailto:u@acme.test>' } : {}),
      ...(next() < 0.3 ? { 'X-Note': 'Grüße aus Köln' } : {}),
    },
    ...(html !== undefined ? { html } : {}),
    ...(plain !== undefined ? { text: plain } : {}),
    ...(attachments.length ? { attachments } : {}),
    disableFileAccess: true,
    disableUrlAccess: true,
  } as Mail;
}

const compile = (mail: Mail) => new MailComposer(mail).compile() as unknown as MessageNode & { build(): Promise<Buffer> };
/** Boundaries are random per tree: named by their order of appearance. */
const sameBoundaries = (raw: string) => {
  const seen = new Map<string, string>();
  return raw.replace(/--_NmP-[0-9a-f]+-Part_\d+/g, (b) => seen.get(b) ?? (seen.set(b, `B${seen.size}`), `B${seen.size - 1}`));
};

describe('a message made at once', () => {
  it('when 400 generated messages are made at once, then each is byte for byte what nodemailer streams for the same tree', async () => {
    const next = rng(1203);
    let multipart = 0;
    for (let i = 0; i < 400; i++) {
      const tree = compile(mailFrom(next, i));
      const whole = wholeMessage(tree);
      expect(whole).not.toBeNull();
      const streamed = await tree.build();
      if (!whole!.equals(streamed)) expect(whole!.toString('latin1')).toBe(streamed.toString('latin1'));
      if (tree.multipart) multipart++;
    }
    // The draw covers single parts and multipart trees (alternative, mixed, related).
    expect(multipart).toBeGreaterThan(100);
    expect(multipart).toBeLessThan(400);
  });

  it('when the same message is compiled twice, then the one made at once equals the one streamed (a fresh tree each, as the send path has)', async () => {
    const next = rng(77);
    for (let i = 0; i < 100; i++) {
      const mail = { ...mailFrom(next, i), date: new Date(Date.UTC(2026, 11, 3, 10, i)) };
      const whole = wholeMessage(compile(mail))!;
      const streamed = await compile(mail).build();
      expect(sameBoundaries(whole.toString('latin1'))).toBe(sameBoundaries(streamed.toString('latin1')));
    }
  });

  it('when a tree holds what only a stream can give, then it is not made at once', () => {
    const base = { from: 'a@mailroom.test', to: 'b@mailroom.test', subject: 's' };
    expect(wholeMessage(compile({ ...base, text: 'hello' }))).not.toBeNull();
    expect(wholeMessage(compile({ ...base, text: Readable.from(['hello']) }))).toBeNull();
    expect(wholeMessage(compile({ ...base, raw: 'Subject: s\r\n\r\nhello\r\n' }))).toBeNull();
    expect(
      wholeMessage(compile({ ...base, text: 'x', attachments: [{ filename: 'big.bin', content: Buffer.alloc(300 * 1024) }] })),
    ).toBeNull();
    const withTransform = compile({ ...base, text: 'hello' });
    withTransform._transforms.push(new PassThrough());
    expect(wholeMessage(withTransform)).toBeNull();
    const withDkim = compile({ ...base, text: 'hello' });
    withDkim._processFuncs.push((s: Readable) => s);
    expect(wholeMessage(withDkim)).toBeNull();
  });
});

/** A hook whose promise the test settles. */
function heldHook() {
  let release!: () => void;
  let fail!: (e: Error) => void;
  const hook = jest.fn(
    () =>
      new Promise<void>((resolve, reject) => {
        release = resolve;
        fail = reject;
      }),
  );
  return { hook, release: () => release(), fail: (e: Error) => fail(e) };
}

describe('the stream of a message made at once', () => {
  it('when it is piped, then the body goes on whole, the hook runs once it is taken, and the stream ends only after the hook', async () => {
    const { hook, release } = heldHook();
    const body = Buffer.from('Subject: s\r\n\r\nhello\r\n');
    const stream = new WholeMessageStream(body, hook);
    const out = new PassThrough();
    const got: Buffer[] = [];
    let ended = false;
    out.on('data', (c: Buffer) => got.push(c));
    out.on('end', () => (ended = true));
    stream.pipe(out);
    await new Promise((r) => setTimeout(r, 20));
    expect(Buffer.concat(got).equals(body)).toBe(true);
    expect(got).toHaveLength(1);
    expect(hook).toHaveBeenCalledTimes(1);
    expect(ended).toBe(false);
    release();
    await new Promise((r) => setTimeout(r, 20));
    expect(ended).toBe(true);
    expect(hook).toHaveBeenCalledTimes(1);
  });

  it('when it is asked for data before it is piped (as the pool builds it before the envelope), then nothing is lost and the hook waits for the pipe', async () => {
    const { hook, release } = heldHook();
    const body = Buffer.from('Subject: s\r\n\r\nearly\r\n');
    const stream = new WholeMessageStream(body, hook);
    stream.on('error', () => undefined);
    // A consumer that peeks before piping: the stream must not hand the body to nobody.
    expect(stream.read(0)).toBeNull();
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setTimeout(r, 20));
    expect(hook).not.toHaveBeenCalled();
    const out = new PassThrough();
    const got: Buffer[] = [];
    out.on('data', (c: Buffer) => got.push(c));
    const ended = new Promise((r) => out.on('end', r));
    stream.pipe(out);
    await new Promise((r) => setTimeout(r, 20));
    expect(Buffer.concat(got).equals(body)).toBe(true);
    expect(hook).toHaveBeenCalledTimes(1);
    release();
    await ended;
  });

  it('when the hook fails, then the stream fails and never ends (no final dot)', async () => {
    const { hook, fail } = heldHook();
    const stream = new WholeMessageStream(Buffer.from('x\r\n'), hook);
    const out = new PassThrough();
    let ended = false;
    out.on('data', () => undefined);
    out.on('end', () => (ended = true));
    const failed = new Promise<Error>((r) => stream.once('error', r));
    stream.pipe(out);
    await new Promise((r) => setTimeout(r, 20));
    fail(new Error('another attempt holds the mark'));
    expect((await failed).message).toBe('another attempt holds the mark');
    await new Promise((r) => setTimeout(r, 20));
    expect(ended).toBe(false);
  });
});

describe('a pooled transport with the final-dot gate', () => {
  let sink: SmtpSink;
  beforeAll(async () => {
    sink = await startSmtpSink({ port: 0, simulator: false });
  });
  afterAll(async () => {
    await sink?.close();
  });

  it('when the same emails go out made at once and streamed by nodemailer, then the server receives the same bytes, each message after its hook', async () => {
    const transport = nodemailer.createTransport({
      host: sink.host,
      port: sink.port,
      secure: false,
      ignoreTLS: true,
      pool: true,
      maxConnections: 2,
    });
    installFinalDotGate(transport);
    // A message marked `viaStream` gets an identity transform: only nodemailer's stream can apply one.
    transport.use('stream', (mail, done) => {
      if ((mail.data as { viaStream?: boolean }).viaStream) mail.message.transform(() => new PassThrough());
      done();
    });
    const next = rng(5);
    const hooks: string[] = [];
    const made = jest.spyOn(WholeMessageStream.prototype, 'pipe');
    try {
      for (let i = 0; i < 30; i++) {
        const mail = { ...mailFrom(next, i), date: new Date(Date.UTC(2026, 11, 3)) };
        await transport.sendMail({ ...mail, [BEFORE_FINAL_DOT]: async () => void hooks.push(`whole ${i}`) } as Mail);
        await transport.sendMail({
          ...mail,
          messageId: `<em_${i}s@mailroom.test>`,
          viaStream: true,
          [BEFORE_FINAL_DOT]: async () => void hooks.push(`streamed ${i}`),
        } as Mail);
      }
      // Every message made at once was sent through its own stream; the others through the gate.
      expect(made).toHaveBeenCalledTimes(30);
      expect(hooks).toHaveLength(60);
      const raws = sink.messages.slice(-60).map((m) => sameBoundaries(m.raw).replace(/em_(\d+)s@/, 'em_$1@'));
      for (let i = 0; i < 30; i++) expect(raws[2 * i]).toBe(raws[2 * i + 1]);
    } finally {
      made.mockRestore();
      transport.close();
    }
  });
});
