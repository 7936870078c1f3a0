/**
 * patches/nodemailer@10.6.1.patch: MimeNode encodes string and Buffer content (up to 256 KiB)
 * with one `encodeWhole` call instead of a PassThrough + encoder Transform + pipeline per node.
 * The patch must not change a byte: `encodeWhole` is compared with the encoder streams on
 * generated inputs, messages built from strings and Buffers with the same messages built from
 * streams (the unchanged path), and whole messages are decoded back to what went in.
 */
import { finished } from 'node:stream/promises';
import { Readable, type Transform } from 'node:stream';
import * as qp from 'nodemailer/lib/qp';
import * as base64 from 'nodemailer/lib/base64';
import MailComposer from 'nodemailer/lib/mail-composer';
// Seeded: every run draws the same inputs, so a failure is reproducible.
import { seededRandom as rng } from '../../infra/dev/seeded-random';

// What text in an email is made of, with what QP treats specially: whitespace before a line end,
// lone CR/LF, '=', multi-byte UTF-8 sequences, long unbroken runs (URLs).
const PIECES = [
  'a',
  'Invoice ',
  ' ',
  '  ',
  '\t',
  '\r\n',
  '\n',
  '\r',
  '=',
  '.',
  'é',
  '€',
  '😀',
  '<a href="https://x.test/t?u=',
  'https://track.mailroom.test/v1/t/o/0123456789abcdef0123456789abcdef.eyJlIjoiMDEyMzQ1Njc4OSJ9.png',
];

function textInput(next: () => number): string {
  const n = Math.floor(next() ** 2 * 400);
  let s = '';
  for (let i = 0; i < n; i++) s += PIECES[Math.floor(next() * PIECES.length)];
  return s;
}

function bytesInput(next: () => number): Buffer {
  const b = Buffer.alloc(Math.floor(next() ** 2 * 3000));
  for (let i = 0; i < b.length; i++)
    b[i] = next() < 0.3 ? [0x0d, 0x0a, 0x20, 0x09, 0x3d][Math.floor(next() * 5)]! : Math.floor(next() * 256);
  return b;
}

/** The encoder stream's output for `input` written in the given pieces. */
async function viaStream(encoder: Transform, input: Buffer, cuts: number[] = []): Promise<Buffer> {
  const out: Buffer[] = [];
  encoder.on('data', (c: Buffer) => out.push(Buffer.from(c)));
  let from = 0;
  for (const at of [...cuts.sort((a, b) => a - b), input.length]) {
    if (at > from) encoder.write(input.subarray(from, at));
    from = Math.max(from, at);
  }
  encoder.end();
  await finished(encoder);
  return Buffer.concat(out);
}

const QP_OPTIONS = [
  {},
  { lineLength: 76 },
  { lineLength: 7 },
  { lineLength: false },
  { binary: true },
  { binary: true, lineLength: 20 },
] as const;
const B64_OPTIONS = [{}, { lineLength: 76 }, { lineLength: 5 }, { lineLength: false }] as const;

describe('nodemailer whole-content encoding (patched)', () => {
  it('when text or bytes are quoted-printable encoded at once, then the output equals the encoder stream given them in one piece (as MimeNode gives it)', async () => {
    const next = rng(16);
    for (let i = 0; i < 1500; i++) {
      const input = i % 3 === 2 ? bytesInput(next) : textInput(next);
      const buf = typeof input === 'string' ? Buffer.from(input, 'utf-8') : input;
      const options = QP_OPTIONS[i % QP_OPTIONS.length]!;
      const whole = qp.encodeWhole(input, { ...options });
      expect(whole.toString('latin1')).toBe((await viaStream(new qp.Encoder({ ...options }), buf)).toString('latin1'));
    }
  });

  it('when bytes are base64 encoded at once, then the output equals the encoder stream given them in one piece or many', async () => {
    const next = rng(64);
    for (let i = 0; i < 1000; i++) {
      const input = i % 2 ? bytesInput(next) : textInput(next);
      const buf = typeof input === 'string' ? Buffer.from(input, 'utf-8') : input;
      const options = B64_OPTIONS[i % B64_OPTIONS.length]!;
      const whole = base64.encodeWhole(input, { ...options });
      expect(whole.toString('latin1')).toBe((await viaStream(new base64.Encoder({ ...options }), buf)).toString('latin1'));
      // base64's stream output does not depend on how its input is split: also checked
      const cuts = [Math.floor(next() * buf.length), Math.floor(next() * buf.length)];
      expect(whole.equals(await viaStream(new base64.Encoder({ ...options }), buf, cuts))).toBe(true);
    }
  });

  it('when messages are built from strings and Buffers (one call) and from the same content as streams (the encoder streams), then they are the same bytes', async () => {
    const next = rng(1203);
    const asStream = (c: string | Buffer) => Readable.from([typeof c === 'string' ? Buffer.from(c, 'utf-8') : c]);
    const build = async (mail: ConstructorParameters<typeof MailComposer>[0]) =>
      (await new MailComposer(mail).compile().build()).toString('latin1').replace(/--_NmP-[0-9a-f]+-Part/g, '--boundary');
    for (let i = 0; i < 150; i++) {
      // Long lines or non-ASCII: nodemailer picks QP for such text, as it does for text given as a stream.
      const html = `<p>é ${'w'.repeat(80)}</p>${textInput(next)}`;
      const text = `ü ${'w'.repeat(80)}${textInput(next)}`;
      const files = [bytesInput(next), Buffer.from(textInput(next) || 'x', 'utf-8')];
      const common = {
        from: 'a@mailroom.test',
        to: 'b@mailroom.test',
        subject: `s${i}`,
        messageId: `<m${i}@mailroom.test>`,
        date: new Date(0),
      };
      const whole = await build({
        ...common,
        html,
        text,
        attachments: files.map((content, j) => ({ filename: `f${j}.bin`, content })),
      });
      const streamed = await build({
        ...common,
        html: asStream(html),
        text: asStream(text),
        attachments: files.map((content, j) => ({ filename: `f${j}.bin`, content: asStream(content) })),
      });
      expect(whole).toBe(streamed);
    }
  });

  it('when a message has QP html, text and attachments, then small content takes the one-call path, large content streams, and every part decodes to its input', async () => {
    const next = rng(7);
    const html = `<p>Grüße, ${'Ihre Rechnung ist fällig. '.repeat(40)}</p><img src="${PIECES.at(-1)}" alt="">\r\n<p>Ende  </p>`;
    const text = `Line with trailing space \nand a very long line ${'x'.repeat(200)}\nüber`;
    const random = (n: number) => Buffer.from(Array.from({ length: n }, () => Math.floor(next() * 256)));
    const small = random(5000);
    const large = random(300 * 1024);
    const qpWhole = jest.spyOn(qp, 'encodeWhole');
    const b64Whole = jest.spyOn(base64, 'encodeWhole');
    try {
      const raw = await new MailComposer({
        from: 'a@mailroom.test',
        to: 'b@mailroom.test',
        subject: 'Invoice',
        html,
        text,
        attachments: [
          { filename: 'small.bin', content: small },
          { filename: 'large.bin', content: large },
          { filename: 'notes.txt', content: 'plain notes\r\n', contentType: 'text/plain' },
        ],
      })
        .compile()
        .build();
      // html and text (QP), small.bin and notes.txt (base64, as nodemailer encodes attachments); large.bin exceeds the limit
      expect(qpWhole).toHaveBeenCalledTimes(2);
      expect(b64Whole).toHaveBeenCalledTimes(2);
      const parts = leafParts(raw.toString('latin1'));
      expect(parts.map((p) => p.headers['content-transfer-encoding'])).toEqual([
        'quoted-printable',
        'quoted-printable',
        'base64',
        'base64',
        'base64',
      ]);
      expect(parts[0]!.decoded.toString('utf-8')).toBe(text);
      expect(parts[1]!.decoded.toString('utf-8')).toBe(html);
      expect(parts[2]!.decoded.equals(small)).toBe(true);
      expect(parts[3]!.decoded.equals(large)).toBe(true);
      expect(parts[4]!.decoded.toString()).toBe('plain notes\r\n');
      for (const line of raw.toString('latin1').split('\r\n')) expect(line.length).toBeLessThanOrEqual(78);
    } finally {
      qpWhole.mockRestore();
      b64Whole.mockRestore();
    }
  });
});

interface Part {
  headers: Record<string, string>;
  decoded: Buffer;
}

/** The leaf parts of a MIME message, in order, each decoded from its transfer encoding. */
function leafParts(raw: string): Part[] {
  const split = raw.indexOf('\r\n\r\n');
  const headers: Record<string, string> = {};
  for (const h of raw
    .slice(0, split)
    .replace(/\r\n[ \t]+/g, ' ')
    .split('\r\n')) {
    const colon = h.indexOf(':');
    headers[h.slice(0, colon).toLowerCase()] = h.slice(colon + 1).trim();
  }
  const body = raw.slice(split + 4);
  const boundary = /boundary="?([^";]+)"?/.exec(headers['content-type'] ?? '')?.[1];
  if (boundary && /^multipart\//i.test(headers['content-type']!)) {
    const inner = body.split(`--${boundary}`).slice(1, -1);
    return inner.flatMap((p) => leafParts(p.replace(/^\r\n/, '').replace(/\r\n$/, '')));
  }
  const cte = headers['content-transfer-encoding'];
  const decoded =
    cte === 'base64'
      ? Buffer.from(body.replace(/\r\n/g, ''), 'base64')
      : cte === 'quoted-printable'
        ? Buffer.from(
            body.replace(/=\r\n/g, '').replace(/=([0-9A-F]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16))),
            'latin1',
          )
        : Buffer.from(body, 'latin1');
  return [{ headers, decoded }];
}
