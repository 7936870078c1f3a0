/**
 * Turns a send error (nodemailer 10, Node socket/DNS errors, anything thrown) into what the email
 * log shows: a stable error code, a "what to check" hint for a workspace admin, and whether
 * retrying can help. Everything product-facing is data in the tables below.
 *
 * How nodemailer 10 reports failures (read from node_modules/nodemailer/dist/cjs/smtp-connection):
 * - DNS failures: code EDNS, Node's code (ENOTFOUND, EAI_AGAIN, ...) in `originalCode`;
 * - socket errors: code ESOCKET, Node's code (ECONNREFUSED, ECONNRESET, ...) in `originalCode`;
 * - connect/greeting/socket timeouts: code ETIMEDOUT (no originalCode, `timeoutType` set);
 * - server replies: `response`, `responseCode`, `command`; RCPT/MAIL rejections come as EENVELOPE,
 *   DATA rejections as EMESSAGE, a rejected login as EAUTH (535);
 * - OAuth2 token failures: code EAUTH, command 'AUTH XOAUTH2', `originalCode` EOAUTH2 (the token
 *   endpoint refused) or EFETCH (the token endpoint could not be reached).
 */

export type SendMethod = 'managed' | 'custom' | 'test';

export interface NormalizedSendError {
  errorCode: string;
  errorHint: string;
  permanent: boolean;
  /** readable raw error including the server response, with credentials stripped */
  message: string;
  responseCode?: number;
  command?: string;
}

const SETTINGS = 'Settings > Email > Sending email';
const RETRY = 'Usually temporary, so try resending.';
const MANAGED_RETRY = 'Mailroom retries automatically; there is nothing to fix on your side.';
const PROTOCOL_HINT = `Your email server did not accept a command Mailroom sent. Check that the SMTP host and port in ${SETTINGS} point at a standard SMTP server.`;

export const GENERIC_HINT = `The email could not be sent. Read the error message for details, review ${SETTINGS}, and try resending.`;

/**
 * Hints by error code. A `${method}:${code}` key is looked up before the plain code; SMTP reply
 * codes without their own entry fall back to SMTP_4XX / SMTP_5XX, anything else to GENERIC_HINT.
 */
export const ERROR_HINTS: Readonly<Record<string, string>> = Object.freeze({
  // the six codes of the help center's troubleshooting table, in its wording
  ENOTFOUND: "The recipient's email address has an invalid domain. Double-check the email address for typos.",
  ECONNREFUSED: 'Your email server refused the connection. Check that your SMTP host and port are correct in your email settings.',
  ETIMEDOUT:
    'Your email server took too long to respond. Usually temporary, so try resending. If it keeps happening, check your SMTP settings.',
  ECONNRESET: 'The connection to your email server was interrupted. Usually temporary, so try resending.',
  EAUTH: `Your email login details were rejected. Go to ${SETTINGS} and update your username or password.`,
  ESOCKET: 'Could not connect to your email server. Check that your SMTP host, port, and SSL settings are correct.',

  // sign-in
  ENOAUTH: `Your email server requires a login but none is saved. Go to ${SETTINGS} and add your username and password.`,
  EOAUTH2: `Your connected Google or Outlook account refused to give Mailroom access (the sign-in may have expired or been revoked). Reconnect the account in ${SETTINGS}.`,
  EFETCH: `Mailroom could not reach your email provider's sign-in service. ${RETRY} If it keeps happening, reconnect the account in ${SETTINGS}.`,

  // connection and network
  ECONNECTION: `Your email server closed the connection unexpectedly. ${RETRY} If it keeps happening, check your SMTP host, port, and SSL settings.`,
  EDNS: `Mailroom could not look up your email server's address. Check the SMTP host in ${SETTINGS} for typos.`,
  EAI_AGAIN: `Looking up your email server's address failed for the moment (DNS). ${RETRY}`,
  EHOSTUNREACH:
    'Your email server could not be reached over the network. Check the SMTP host; if it is correct, the server may be down, so try resending later.',
  ENETUNREACH:
    'Your email server could not be reached over the network. Check the SMTP host; if it is correct, the server may be down, so try resending later.',
  EPIPE: `The connection to your email server was interrupted while sending. ${RETRY}`,
  ECONNABORTED: `The connection to your email server was interrupted while sending. ${RETRY}`,
  ETLS: 'A secure (SSL/TLS) connection to your email server could not be set up. Check the port and SSL setting: port 465 usually needs SSL on, ports 587 and 25 usually need it off.',
  EREQUIRETLS:
    'This email requires end-to-end TLS (REQUIRETLS) but your email server does not support it. Use a server that supports it or send without that requirement.',
  EPROXY: `Mailroom could not connect through the configured proxy. ${RETRY} If it keeps happening, check the proxy settings.`,

  // protocol, envelope and message
  EPROTOCOL: `Your email server answered in a way Mailroom did not understand. Check that the SMTP host and port in ${SETTINGS} point at an SMTP server (not a web or IMAP server).`,
  EENVELOPE: `The sender or recipient address was refused. Check the From address in ${SETTINGS} and the recipient address for typos.`,
  EMESSAGE:
    "Your email server refused the message itself, often because it is too large. Check the attachments and your provider's size limits, then resend.",
  ESTREAM: `Mailroom could not read part of the message (often an attachment) while sending. ${RETRY} If it keeps happening, check the attachments.`,
  EFILEACCESS: 'An attachment points to a file Mailroom is not allowed to read. Attach the file again and resend.',
  EURLACCESS: 'An attachment points to a web address Mailroom is not allowed to fetch. Attach the file again and resend.',
  EMAXLIMIT:
    'The connection to your email server reached its per-connection message limit. This is temporary; Mailroom sends again on a new connection.',
  EMAXRECIPIENTS: 'The email has more recipients than allowed in one message. Send it to fewer recipients at once.',
  ECONFIG: `Your email sending settings are incomplete or invalid. Review ${SETTINGS} and save them again.`,
  EOTP: `The one-time passcode settings for your email server are invalid. Review ${SETTINGS} and save them again.`,
  EABORT: 'Sending was cancelled before it finished (for example during a restart). Try resending if it does not go out on its own.',
  EUNKNOWN: GENERIC_HINT,

  // not handed off: the recipient is on the workspace's suppression list
  ESUPPRESSED:
    'Not sent: this address is on your suppression list because an earlier email to it hard-bounced or was marked as spam. Check the address with the recipient, then remove it from the suppression list (DELETE /v1/suppressions/<address>) and resend.',
  // reported by the provider after hand-off (delivery events), in the help center's words
  BOUNCED_HARD:
    "The recipient's server permanently rejected the email: usually an invalid address or a domain that blocks you. The address is now suppressed; check it for typos before removing it from the suppression list.",
  BOUNCED_SOFT:
    "The recipient's server temporarily rejected the email (for example a full mailbox). The provider may still deliver it; if not, try resending later.",
  COMPLAINED:
    "The recipient marked the email as spam, so the address is now suppressed. Complaints usually mean the recipient didn't expect the email: check that you're using the right template and the right address.",
  DELIVERY_FAILED:
    'The sending provider reported that it could not deliver the email after accepting it. Read the Error column for its reason.',

  // SMTP replies (errorCode SMTP_<code>)
  SMTP_421: `Your email server is temporarily unavailable and closed the connection (421). ${RETRY}`,
  SMTP_450: "The recipient's mailbox is temporarily unavailable (450). Usually temporary, so try resending later.",
  SMTP_451: 'The mail server had a temporary local problem (451). Usually temporary, so try resending later.',
  SMTP_452:
    'The mail server is temporarily out of storage or got too many recipients (452). Try resending later, or send to fewer recipients at once.',
  SMTP_454: `Your email server could not sign you in right now (454). ${RETRY} If it keeps happening, check your login details in ${SETTINGS}.`,
  SMTP_500: PROTOCOL_HINT,
  SMTP_501: PROTOCOL_HINT,
  SMTP_502: PROTOCOL_HINT,
  SMTP_503: PROTOCOL_HINT,
  SMTP_504: PROTOCOL_HINT,
  SMTP_521: "The recipient's domain does not accept email (521). Double-check the email address for typos.",
  SMTP_530: `Your email server requires you to sign in before sending (530). Add your username and password in ${SETTINGS}.`,
  SMTP_534: `Your email server wants a stronger sign-in method (534). For Google or Outlook, reconnect the account in ${SETTINGS} or use an app password.`,
  SMTP_535: `Your email login details were rejected (535). Go to ${SETTINGS} and update your username or password.`,
  SMTP_538: `Your email server requires an encrypted connection before signing in (538). Turn on SSL or use port 587 in ${SETTINGS}.`,
  SMTP_550:
    "The recipient's mail server rejected the address: the mailbox does not exist or the message was refused (550). Double-check the email address for typos; resending will not help until it is fixed.",
  SMTP_551:
    "The recipient's mail server does not accept email for this address (551). Double-check the email address or ask the recipient for a current one.",
  SMTP_552:
    "The recipient's mailbox is full or the message is too large (552). Ask the recipient to free up space, or send a smaller message.",
  SMTP_553: `The mail server refused an address as not allowed (553), often because the From address is not one your account may send as. Check the From address in ${SETTINGS} and the recipient address.`,
  SMTP_554:
    'The mail server rejected the message for policy or spam reasons (554). Check the content and make sure SPF and DKIM are set up for your sending domain.',
  SMTP_556: "The recipient's domain does not accept email (556). Double-check the email address for typos.",
  SMTP_4XX: 'The mail server temporarily refused the email. Usually temporary, so try resending later.',
  SMTP_5XX:
    "The mail server permanently rejected the email. Read the server's response in the Error column; resending will not help until the cause is fixed.",

  // Mailroom's managed sending: connection problems are on Mailroom's side
  'managed:ENOTFOUND':
    "Mailroom's managed sending relay could not be found (DNS). This is on Mailroom's side, nothing to fix in your settings; resend the email later.",
  'managed:ECONNREFUSED': `Mailroom's managed sending relay is unreachable right now. ${MANAGED_RETRY}`,
  'managed:ETIMEDOUT': `Mailroom's managed sending relay took too long to respond. ${MANAGED_RETRY}`,
  'managed:ECONNRESET': `The connection to Mailroom's managed sending relay was interrupted. ${MANAGED_RETRY}`,
  'managed:ESOCKET': `Mailroom could not connect to its managed sending relay. ${MANAGED_RETRY}`,
  'managed:ECONNECTION': `Mailroom's managed sending relay closed the connection unexpectedly. ${MANAGED_RETRY}`,
  'managed:EAI_AGAIN': `Looking up Mailroom's managed sending relay failed for the moment. ${MANAGED_RETRY}`,
  'managed:SMTP_421': `Mailroom's managed sending relay is busy right now. ${MANAGED_RETRY}`,
  'managed:EAUTH':
    "Mailroom's managed sending relay refused Mailroom's own login. This is on Mailroom's side, nothing to fix in your settings; resend the email later.",
  // With your own SMTP server, a name that does not resolve is usually the SMTP host itself.
  'custom:ENOTFOUND': `The recipient's email address has an invalid domain. Double-check the email address for typos. If it is right, check the SMTP host name in ${SETTINGS}.`,
  'test:ENOTFOUND': `The SMTP host name in ${SETTINGS} could not be found. Check it for typos, save, and run the test again.`,
  // The final dot of DATA went out and no answer was recorded (the worker died, or the connection
  // was lost before the reply): Mailroom never sends twice blindly.
  EHANDOFF_UNKNOWN:
    'Mailroom had sent the whole email to the mail server when it stopped or lost the connection, before the server answered, so it cannot tell whether the email left. Check with the recipient, or resend it if it did not arrive. A later delivery event for this email settles it.',
  'test:EAUTH': `The test send failed because the login details were rejected. Check the username and password in ${SETTINGS}, save, and run the test again.`,
});

/**
 * Whether retrying the same email can help. Codes not listed: SMTP replies go by class
 * (5xx permanent, 4xx transient), anything else is transient.
 */
export const ERROR_PERMANENCE: Readonly<Record<string, boolean>> = Object.freeze({
  EAUTH: true,
  ENOAUTH: true,
  EOAUTH2: true,
  ENOTFOUND: true,
  ETLS: true,
  EREQUIRETLS: true,
  ECONFIG: true,
  EOTP: true,
  EPROTOCOL: true,
  EMESSAGE: true,
  EENVELOPE: true,
  EMAXRECIPIENTS: true,
  EFILEACCESS: true,
  EURLACCESS: true,
  ETIMEDOUT: false,
  ECONNRESET: false,
  ECONNREFUSED: false,
  ECONNECTION: false,
  ESOCKET: false,
  EDNS: false,
  EAI_AGAIN: false,
  EHOSTUNREACH: false,
  ENETUNREACH: false,
  EPIPE: false,
  ECONNABORTED: false,
  EMAXLIMIT: false,
  EABORT: false,
  ESTREAM: false,
  EPROXY: false,
  EFETCH: false,
  EUNKNOWN: false,
});

/**
 * Wrapper code → (originalCode → code we report). Recovers the Node code nodemailer moved to
 * `originalCode`, and the OAuth2 cause of an EAUTH.
 */
const NETWORK: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'ECONNREFUSED',
  ECONNRESET: 'ECONNRESET',
  ETIMEDOUT: 'ETIMEDOUT',
  ENOTFOUND: 'ENOTFOUND',
  EAI_AGAIN: 'EAI_AGAIN',
  EHOSTUNREACH: 'EHOSTUNREACH',
  ENETUNREACH: 'ENETUNREACH',
  EPIPE: 'EPIPE',
  ECONNABORTED: 'ECONNABORTED',
};
const RECOVER_ORIGINAL: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  ESOCKET: NETWORK,
  ECONNECTION: NETWORK,
  EDNS: { ENOTFOUND: 'ENOTFOUND', ENODATA: 'ENOTFOUND', EAI_AGAIN: 'EAI_AGAIN', ETIMEOUT: 'EAI_AGAIN', ESERVFAIL: 'EAI_AGAIN' },
  EAUTH: { EOAUTH2: 'EOAUTH2', EFETCH: 'EFETCH' },
};
/** These keep their code even when the server replied (EAUTH comes with 535). */
const AUTH_CODES = new Set(['EAUTH', 'ENOAUTH', 'EOAUTH2', 'EFETCH']);

const MAX_MESSAGE_LENGTH = 2000;
const CREDENTIAL_PATTERNS: ReadonlyArray<[RegExp, string]> = [
  [/\b([a-z][a-z0-9+.-]*:\/\/)[^\s/@]+@/gi, '$1***@'], // smtp://user:pass@host
  [/\b(AUTH\s+(?:PLAIN|LOGIN|XOAUTH2|CRAM-MD5)\s+)\S+/gi, '$1***'],
  [/\b(Bearer\s+)[\w.~+/=-]+/gi, '$1***'],
  [/\b(pass(?:word)?|secret|client_secret|access_token|refresh_token|token|api[_-]?key)(["']?\s*[:=]\s*["']?)[^\s"'&,;]+/gi, '$1$2***'],
];

function field(err: unknown, key: string): unknown {
  return typeof err === 'object' && err !== null ? (err as Record<string, unknown>)[key] : undefined;
}

function str(value: unknown): string | undefined {
  return typeof value === 'string' && value.length > 0 ? value : undefined;
}

function rawMessage(err: unknown): string {
  if (typeof err === 'string') return err;
  const message = str(field(err, 'message'));
  const response = str(field(err, 'response'));
  if (message && response && !message.includes(response)) return `${message}: ${response}`;
  if (message ?? response) return (message ?? response)!;
  try {
    return JSON.stringify(err) ?? String(err);
  } catch {
    return String(err);
  }
}

export function stripCredentials(text: string): string {
  let out = text;
  for (const [pattern, replacement] of CREDENTIAL_PATTERNS) out = out.replace(pattern, replacement);
  return out.length > MAX_MESSAGE_LENGTH ? `${out.slice(0, MAX_MESSAGE_LENGTH)}…` : out;
}

function errorCodeOf(code: string | undefined, originalCode: string | undefined, responseCode: number | undefined): string {
  const recovered = code && originalCode ? RECOVER_ORIGINAL[code]?.[originalCode] : undefined;
  if (recovered) return recovered;
  if (code && AUTH_CODES.has(code)) return code;
  if (responseCode !== undefined && responseCode >= 400 && responseCode < 600) return `SMTP_${responseCode}`;
  if (code && /^[A-Z][A-Z0-9_]*$/.test(code)) return code;
  return 'EUNKNOWN';
}

function smtpClass(errorCode: string): string | undefined {
  const match = /^SMTP_([45])\d\d$/.exec(errorCode);
  return match ? `SMTP_${match[1]}XX` : undefined;
}

function lookup<T>(table: Readonly<Record<string, T>>, keys: Array<string | undefined>): T | undefined {
  for (const key of keys) if (key !== undefined && Object.hasOwn(table, key)) return table[key];
  return undefined;
}

export function normalizeSendError(err: unknown, method: SendMethod): NormalizedSendError {
  const code = str(field(err, 'code'));
  const originalCode = str(field(err, 'originalCode'));
  const rc = Number(field(err, 'responseCode'));
  const responseCode = Number.isInteger(rc) && rc >= 100 && rc < 600 ? rc : undefined;
  const command = str(field(err, 'command'));

  const errorCode = errorCodeOf(code, originalCode, responseCode);
  const cls = smtpClass(errorCode);
  const errorHint = lookup(ERROR_HINTS, [`${method}:${errorCode}`, errorCode, cls && `${method}:${cls}`, cls]) ?? GENERIC_HINT;
  const permanent = lookup(ERROR_PERMANENCE, [errorCode]) ?? cls === 'SMTP_5XX';

  return {
    errorCode,
    errorHint,
    permanent,
    message: stripCredentials(rawMessage(err)),
    ...(responseCode !== undefined ? { responseCode } : {}),
    ...(command !== undefined ? { command } : {}),
  };
}
