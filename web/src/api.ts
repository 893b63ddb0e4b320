/**
 * The service's JSON API as the pages use it: same origin, cookies included, the CSRF token
 * sent as X-CSRFToken on every unsafe request (API.md §2).
 */

/** The envelope every JSON answer carries (API.md §1), with the extra keys the pages read. */
export interface Envelope {
  code: number;
  message: string;
  /** Stable error id (API.md §5); absent on success. */
  error?: string;
  retry_after?: number;
  attempts_left?: number;
  resend_after?: number;
  count?: number;
  csrf_token?: string;
  /** The address or number an answer of the user centre names (PUT /emails/, masked mobile of a reset). */
  email?: string;
  mobile?: string;
  /** DELETE /sessions/{handle}/: whether the ended session was this one. */
  current?: boolean;
  /** DELETE /sessions/: how many other sessions ended. */
  ended?: number;
  info_data?: { username: string; mobile: string; email: string; email_active: boolean };
}

export interface Answer {
  /** HTTP status; 0 when the request never got an answer. */
  status: number;
  body: Envelope;
}

const NETWORK_ERROR = '网络异常，请检查网络后重试';
const BAD_ANSWER = '服务繁忙，请稍后再试';

let csrfToken: Promise<string> | undefined;

/** True for the answer of a request that did what was asked (HTTP 200 and code 0). */
export function succeeded(answer: Answer): boolean {
  return answer.status === 200 && answer.body.code === 0;
}

async function send(method: string, path: string, body: unknown, token: string | undefined): Promise<Answer> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (token !== undefined) headers['X-CSRFToken'] = token;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response: Response;
  try {
    response = await fetch(path, {
      method,
      headers,
      credentials: 'same-origin',
      cache: 'no-store',
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
  } catch {
    return { status: 0, body: { code: -1, message: NETWORK_ERROR, error: 'NETWORK' } };
  }
  let parsed: Envelope;
  try {
    parsed = (await response.json()) as Envelope;
  } catch {
    parsed = { code: response.status, message: BAD_ANSWER, error: 'BAD_ANSWER' };
  }
  if (typeof parsed.message !== 'string') parsed.message = BAD_ANSWER;
  // Login and registration rotate the secret and hand back a token of the new one.
  if (typeof parsed.csrf_token === 'string') csrfToken = Promise.resolve(parsed.csrf_token);
  return { status: response.status, body: parsed };
}

/** Fetches a CSRF token (and so the csrftoken cookie) once per page, on first need. */
export function csrf(): Promise<string> {
  csrfToken ??= send('GET', '/csrf_token/', undefined, undefined).then((answer) => {
    if (!succeeded(answer) || typeof answer.body.csrf_token !== 'string') {
      csrfToken = undefined;
      return '';
    }
    return answer.body.csrf_token;
  });
  return csrfToken;
}

export function get(path: string): Promise<Answer> {
  return send('GET', path, undefined, undefined);
}

/**
 * POST/PUT/DELETE with the CSRF token. A CSRF refusal is retried once with a fresh token:
 * another tab that logged in meanwhile rotated the cookie's secret, and a refused request
 * did nothing on the server.
 */
export async function unsafe(
  method: 'POST' | 'PUT' | 'DELETE',
  path: string,
  body?: unknown,
): Promise<Answer> {
  const answer = await send(method, path, body, await csrf());
  if (answer.status !== 403 || answer.body.error !== 'CSRF_FAILED') return answer;
  csrfToken = undefined;
  return send(method, path, body, await csrf());
}

/** `path` with each dynamic segment percent-encoded. */
export function pathOf(strings: TemplateStringsArray, ...values: string[]): string {
  return strings.reduce(
    (out, s, i) => out + s + (i < values.length ? encodeURIComponent(values[i] ?? '') : ''),
    '',
  );
}
