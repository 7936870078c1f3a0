/** What the worker reads from an SMTP conversation: the provider's id in the reply to DATA, the domain of our Message-ID. */

/** Patterns that find the provider's message id in an SMTP "250" reply to DATA. Data, not code. */
const PROVIDER_ID_PATTERNS: RegExp[] = [
  /queued as ([A-Za-z0-9._@<>-]+)/i, // Postfix, smtp-server sinks
  /^250 (?:2\.0\.0 )?OK ([0-9a-f-]{20,})$/i, // Amazon SES style "250 Ok <id>"
  /id=([A-Za-z0-9._-]+)/i, // Exim
  /<([^<>\s]+@[^<>\s]+)>/, // providers that echo a Message-ID
  /\b2\.0\.0 OK\s+\d+\s+([A-Za-z0-9._-]+)\s+- gsmtp/i, // Gmail
];

export function providerMessageIdFrom(response: string | undefined): string | null {
  if (!response) return null;
  for (const pattern of PROVIDER_ID_PATTERNS) {
    const m = pattern.exec(response.trim());
    if (m?.[1]) return m[1];
  }
  return null;
}

/** Domain for our Message-ID: the sending address's own domain. */
export function messageIdDomain(from: string): string {
  const m = /@([^>\s]+)>?\s*$/.exec(from);
  return m?.[1]?.toLowerCase() ?? 'mailroom.local';
}
