import type { EmailLogItem } from './view';

/** Columns of the CSV export: the page's columns first, then what helps to follow up. */
export const EMAIL_LOG_CSV_COLUMNS: ReadonlyArray<readonly [string, (i: EmailLogItem) => string | number | null]> = [
  ['Recipient', (i) => i.recipient],
  ['Status', (i) => i.statusLabel],
  ['Type', (i) => i.type],
  ['From', (i) => i.from],
  ['Error', (i) => i.error],
  ['Send method', (i) => i.sendMethodLabel],
  ['Opened at', (i) => i.openedAt],
  ['Sent at', (i) => i.sentAt],
  ['Id', (i) => i.id],
  ['Subject', (i) => i.subject],
  ['Error code', (i) => i.errorCode],
];

/**
 * One CSV cell (RFC 4180). Cells a spreadsheet would read as a formula (`=`, `+`, `-`, `@`,
 * and tab or CR that some programs strip first) get a leading single quote: recipients and
 * subjects come from API callers, and an export is opened by someone else.
 */
export function csvCell(value: string | number | null | undefined): string {
  if (value === null || value === undefined) return '';
  let s = String(value);
  if (typeof value === 'string' && /^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function emailLogCsvHeader(): string {
  return EMAIL_LOG_CSV_COLUMNS.map(([name]) => csvCell(name)).join(',') + '\r\n';
}

export function emailLogCsvRow(item: EmailLogItem): string {
  return EMAIL_LOG_CSV_COLUMNS.map(([, get]) => csvCell(get(item))).join(',') + '\r\n';
}
