/**
 * Hides the credentials of an AMQP URL so it can go into a log line or an
 * error message: the whole user-info part becomes `***`, as do query
 * parameters whose name looks secret (`password`, `token`, `secret`, `key`).
 *
 * It works on the raw string, so it also redacts URLs that `new URL` would
 * reject, e.g. with an unescaped `@` or `/` in the password: everything up to
 * the last `@` before the query string is treated as user info (over-redacting
 * a path that contains `@` rather than leaking a password).
 *
 * @example redactUrl('amqp://user:s3cret@rabbit:5672/vh') === 'amqp://***@rabbit:5672/vh'
 */
export function redactUrl(url: string): string {
  let out = String(url);
  const schemeEnd = out.indexOf('://');
  if (schemeEnd >= 0) {
    const queryStart = out.slice(schemeEnd + 3).search(/[?#]/);
    const beforeQuery = queryStart >= 0 ? out.slice(0, schemeEnd + 3 + queryStart) : out;
    const at = beforeQuery.lastIndexOf('@');
    if (at > schemeEnd) out = `${out.slice(0, schemeEnd + 3)}***@${out.slice(at + 1)}`;
  }
  return out.replace(/([?&][^=&#]*(?:password|passwd|pass|pwd|secret|token|key)[^=&#]*=)[^&#]*/gi, '$1***');
}
