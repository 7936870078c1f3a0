import { Readable } from 'node:stream';
import * as base64 from 'nodemailer/lib/base64';
import * as qp from 'nodemailer/lib/qp';
import type { BeforeFinalDot } from './final-dot-gate';

/**
 * What `MimeNode.stream()` reads of a compiled message tree (nodemailer 10.6.1 with
 * patches/nodemailer@10.6.1.patch), read here the same way.
 */
export interface MessageNode {
  _raw?: unknown;
  content?: unknown;
  contentType?: string;
  multipart?: string | false;
  boundary?: string;
  childNodes: MessageNode[];
  newline?: unknown;
  _transforms: unknown[];
  _processFuncs: unknown[];
  getTransferEncoding(): string | false;
  buildHeaders(): string;
  createReadStream(options?: unknown): Readable;
}

/** The largest content a part may have to be written whole (the patch's limit for one-call encoding). */
const WHOLE_PART_LIMIT = 256 * 1024;
/** The largest message written whole; a larger one streams (nodemailer's path, with backpressure). */
const WHOLE_MESSAGE_LIMIT = 1024 * 1024;

const isWholeContent = (c: unknown): c is string | Buffer =>
  (typeof c === 'string' || Buffer.isBuffer(c)) && c.length > 0 && c.length <= WHOLE_PART_LIMIT;

/**
 * The message `MimeNode.createReadStream()` would stream, made at once: the same header blocks
 * (each node's own `buildHeaders()`), the same encoders (`encodeWhole`, which the patch's tests
 * hold to the encoder streams' bytes), the same boundaries and the terminating newline of its
 * `LastNewline` stage. Null when the tree holds anything that only the stream can give: content
 * that is a stream, a file, a URL or resolved once for two parts, raw nodes, transforms and
 * process functions (DKIM), a newline conversion, a part over 256 KiB or a message over 1 MiB.
 * `tests/unit/whole-message.test.ts` compares it with `build()` of the same tree byte for byte.
 */
export function wholeMessage(root: MessageNode): Buffer | null {
  if (root._transforms.length || root._processFuncs.length || root.newline) return null;
  const pieces: Buffer[] = [];
  let size = 0;
  const add = (b: Buffer) => {
    pieces.push(b);
    size += b.length;
  };
  const walk = (node: MessageNode): boolean => {
    if (node._raw) return false;
    // As stream() does: the encoding is decided before the headers (which record it) are built.
    const transferEncoding = node.getTransferEncoding();
    add(Buffer.from(`${node.buildHeaders()}\r\n\r\n`, 'utf-8'));
    const content = node.content;
    if (content) {
      if (!isWholeContent(content)) return false;
      if (transferEncoding === 'base64') add(base64.encodeWhole(content, {}));
      else if (transferEncoding === 'quoted-printable') add(qp.encodeWhole(content, { binary: !/^text\//i.test(node.contentType ?? '') }));
      else add(typeof content === 'string' ? Buffer.from(content, 'utf-8') : content);
    }
    if (node.multipart) {
      for (let i = 0; i < node.childNodes.length; i++) {
        add(Buffer.from(`${i > 0 ? '\r\n' : ''}--${node.boundary}\r\n`, 'utf-8'));
        if (!walk(node.childNodes[i]!)) return false;
      }
      add(Buffer.from(`\r\n--${node.boundary}--\r\n`, 'utf-8'));
    }
    return size <= WHOLE_MESSAGE_LIMIT;
  };
  if (!walk(root)) return null;
  // LastNewline: a message ends with a line break.
  const last = pieces.findLast((p) => p.length > 0);
  const end = last?.[last.length - 1];
  if (end !== 0x0a) add(Buffer.from(end === 0x0d ? '\n' : '\r\n'));
  return Buffer.concat(pieces, size);
}

/** Calls `then` once everything `stream` has buffered was taken by its consumer (at once if nothing is). */
export function afterTaken(stream: Readable, then: () => void): void {
  if (stream.readableLength === 0) return then();
  const onData = () => {
    if (stream.readableLength > 0) return;
    stream.off('data', onData);
    then();
  };
  stream.on('data', onData);
}

/**
 * A whole message as the stream the SMTP connection pipes into DATA: the body in one chunk
 * (one socket write) when the connection pipes the stream (after DATA's 354), then, once the
 * connection has taken all of it, the hook; the stream ends (and the connection writes the final
 * dot) only when the hook resolved. A rejected hook destroys the stream: no final dot, so no
 * compliant server delivers the message.
 */
export class WholeMessageStream extends Readable {
  private body: Buffer | null;
  private hookStarted = false;

  constructor(
    body: Buffer,
    private readonly hook: BeforeFinalDot,
  ) {
    super();
    this.body = body;
  }

  override pipe<T extends NodeJS.WritableStream>(destination: T, options?: { end?: boolean }): T {
    const out = super.pipe(destination, options);
    if (this.body) {
      const body = this.body;
      this.body = null;
      this.push(body);
    }
    return out;
  }

  override _read(): void {
    // The body goes when the connection pipes the stream: a read before that would lose it.
    if (this.body || this.hookStarted) return;
    this.hookStarted = true;
    // The read that asks for more may come while the body is being handed on: wait until it is taken.
    queueMicrotask(() => {
      if (!this.destroyed) afterTaken(this, () => this.runHook());
    });
  }

  private runHook(): void {
    this.hook().then(
      () => {
        if (!this.destroyed) this.push(null);
      },
      (err: unknown) => this.destroy(err instanceof Error ? err : new Error(String(err))),
    );
  }
}
