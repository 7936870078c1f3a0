import { Transform, type TransformCallback, type Writable } from 'node:stream';
import type { Transporter } from 'nodemailer';
import { afterTaken, wholeMessage, WholeMessageStream, type MessageNode } from './whole-message';

/**
 * The option of `sendMail` that holds a {@link BeforeFinalDot} hook (nodemailer keeps unknown
 * options on `mail.data`, where the stream plugin below finds it).
 */
export const BEFORE_FINAL_DOT = 'mailroomBeforeFinalDot';

/**
 * Runs once the SMTP server has accepted the envelope (MAIL FROM, RCPT TO, DATA's 354) and the
 * whole message body has been handed to the connection, and before the final `.` of DATA is
 * written. A rejection stops the message there: no final dot, so no compliant server delivers it.
 */
export type BeforeFinalDot = () => Promise<void>;

/** The gate passes the body on in blocks of this size (the last one smaller). */
const BLOCK_BYTES = 64 * 1024;

/**
 * The last stage of a message that nodemailer streams (one that cannot be made at once, see
 * whole-message.ts, e.g. a part over 256 KiB): passes the message through, and holds back its end
 * until the hook resolved. nodemailer's SMTPConnection pipes the message into its DataStream,
 * which writes `\r\n.\r\n` when (and only when) the message stream ends, so the final dot waits
 * for the hook.
 *
 * It also joins the message's small chunks (nodemailer's MIME encoder hands on a header block,
 * each encoded part and each boundary as chunks of their own) into blocks of up to 64 KiB: each
 * chunk the connection takes is one write to its socket, tens of µs of system time on loopback
 * (a small email's body went out as four writes; now it is one, then the dot).
 *
 * The message stream is built and starts filling before the envelope is sent, so `_flush` may
 * run long before DATA: the rest of the body is passed on once the connection has piped the
 * stream (after DATA's 354), and the hook runs once the connection has taken every byte of it.
 */
class FinalDotGate extends Transform {
  private piped = false;
  private onPiped: (() => void) | null = null;
  private held: Buffer[] = [];
  private heldBytes = 0;

  constructor(private readonly hook: BeforeFinalDot) {
    super();
  }

  override pipe<T extends NodeJS.WritableStream>(destination: T, options?: { end?: boolean }): T {
    const out = super.pipe(destination as unknown as Writable, options) as unknown as T;
    this.piped = true;
    this.onPiped?.();
    return out;
  }

  private release(): void {
    if (this.heldBytes === 0) return;
    this.push(this.held.length === 1 ? this.held[0]! : Buffer.concat(this.held, this.heldBytes));
    this.held = [];
    this.heldBytes = 0;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.held.push(chunk);
    this.heldBytes += chunk.length;
    if (this.heldBytes >= BLOCK_BYTES) this.release();
    done();
  }

  override _flush(done: TransformCallback): void {
    const run = () => {
      if (this.destroyed) return;
      this.hook().then(
        () => done(),
        (err: unknown) => done(err instanceof Error ? err : new Error(String(err))),
      );
    };
    // The rest of the body, then: every byte taken by the connection (written to its socket), then the hook.
    const whenPiped = () => {
      this.release();
      afterTaken(this, run);
    };
    if (this.piped) whenPiped();
    else this.onPiped = whenPiped;
  }
}

/**
 * Installs the final-dot gate on a transporter: every `sendMail` whose options carry a
 * {@link BEFORE_FINAL_DOT} hook gets a message stream that holds its end until the hook resolved.
 * A message that can be made at once (in-memory content, the usual email) is: one Buffer, the
 * same bytes nodemailer's stream would give (whole-message.ts), sent by {@link WholeMessageStream}.
 * That skips the stream nodemailer builds for every message (a PassThrough, a pipeline with its
 * AbortController, a turn of the event loop per part) and the gate's own Transform. Anything else
 * streams as nodemailer builds it, through the gate, which is then the last stage, after DKIM.
 */
export function installFinalDotGate(transporter: Transporter): void {
  transporter.use('stream', (mail, done) => {
    const hook = (mail.data as Record<string, unknown>)[BEFORE_FINAL_DOT];
    if (typeof hook === 'function') {
      const node = mail.message as unknown as MessageNode;
      const streamed = node.createReadStream.bind(node);
      // Called by the pool for each try of the message (a message requeued after a dropped
      // connection is made again, with the same Date and boundaries).
      node.createReadStream = (options?: unknown) => {
        const body = options === undefined ? wholeMessage(node) : null;
        if (body) return new WholeMessageStream(body, hook as BeforeFinalDot);
        const input = streamed(options);
        const gate = new FinalDotGate(hook as BeforeFinalDot);
        input.once('error', (err) => gate.destroy(err));
        return input.pipe(gate);
      };
    }
    done();
  });
}
