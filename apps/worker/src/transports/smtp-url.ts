/** nodemailer connection fields from an `smtp://` / `smtps://` URL (credentials URL-decoded). */
export interface SmtpEndpoint {
  host: string;
  port: number;
  secure: boolean;
  user?: string;
  pass?: string;
}

export function parseSmtpUrl(url: string): SmtpEndpoint {
  const u = new URL(url);
  const secure = u.protocol === 'smtps:';
  return {
    host: u.hostname.replace(/^\[|\]$/g, ''),
    port: u.port ? Number(u.port) : secure ? 465 : 587,
    secure,
    ...(u.username ? { user: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { pass: decodeURIComponent(u.password) } : {}),
  };
}
