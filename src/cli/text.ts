/**
 * What may reach a terminal or a log: every human line (sync's messages, warnings, `-v`
 * lines, errors; the bucket commands' listings, results and messages) goes through
 * {@link safeText}. JSON output does not (JSON.stringify already escapes what JSON must).
 *
 * - {@link escapeControl}: names and server text are data, never terminal commands. C0
 *   controls (ESC, BEL, CR, LF, TAB…), DEL, C1 controls (U+0080–U+009F, e.g. the 8-bit CSI
 *   U+009B), the line and paragraph separators U+2028/U+2029 and the bidirectional
 *   overrides/isolates/marks (U+061C, U+200E/F, U+202A–U+202E, U+2066–U+2069, which can make
 *   `evil.exe\u202Etxt.sh` read as another name) are shown escaped: `\n`, `\t`, `\r`, `\xHH`,
 *   `\uHHHH`. A backslash itself is left as it is (a Windows-looking name stays readable).
 * - {@link redactUrl}: a password in a URL (`http://user:pass@host`, from --endpoint-url,
 *   AWS_ENDPOINT_URL or HF_ENDPOINT) is shown as `http://user:***@host`.
 */

// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
// eslint-disable-next-line no-control-regex
const UNSAFE_TEST = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

function escapeChar(c: string): string {
  const named = NAMED[c];
  if (named !== undefined) return named;
  const code = c.charCodeAt(0);
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
}

/** `s` with every control, separator and bidi-control character shown escaped (one line, inert). */
export function escapeControl(s: string): string {
  return UNSAFE_TEST.test(s) ? s.replace(UNSAFE, escapeChar) : s;
}

/** The userinfo of URLs: a password is replaced by `***` (the user name stays, to recognise the URL). */
const URL_PASSWORD = /\b([a-z][a-z0-9+.-]*:\/\/)([^\s/?#@:"]*):([^\s/?#"]*)@/gi;
/** Userinfo without a password: often a token itself (`https://TOKEN@host`), so all of it goes. */
const URL_USER_ONLY = /\b([a-z][a-z0-9+.-]*:\/\/)([^\s/?#@:"*]+)@/gi;
/** Query parameters that carry secrets (`?token=…`, `X-Amz-Signature=…`, `api_key=…`). */
const URL_SECRET_PARAM = /([?&][a-z0-9_.-]*(?:token|key|secret|signature|sig|password|passwd|credential|auth)[a-z0-9_.-]*=)[^&\s#"']*/gi;

/** `s` with the credentials of every URL in it replaced by `***`: passwords, token-like user names, secret query values. */
export function redactUrl(s: string): string {
  let out = s;
  if (out.includes('@')) out = out.replace(URL_PASSWORD, '$1$2:***@').replace(URL_USER_ONLY, '$1***@');
  if (out.includes('=')) out = out.replace(URL_SECRET_PARAM, '$1***');
  return out;
}

/** One human line, safe to print: credentials redacted, controls escaped. */
export function safeText(s: string): string {
  return escapeControl(redactUrl(s));
}
