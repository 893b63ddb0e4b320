/**
 * What the OpenAPI document (GET /docs/openapi.json) says of each route beyond the schemas the
 * route validates with: a summary, the error ids it can answer, a documentation-only body for
 * routes whose body the domain checks field by field (each field has its own error id, which a
 * schema check would turn into BAD_REQUEST), and the success answer.
 *
 * Describing a new route: give it `schema: { summary: '…' }` (and its validation schemas) where
 * it is declared, or add an entry here under `METHOD /path/pattern`. test/routes/openapi.test.ts
 * fails for a route that has neither. Examples (`examples: [...]`) are checked against their
 * schemas by the same test.
 */
import Type, { type TSchema } from 'typebox';
import type { ErrorId } from '../domain/errors.js';

export interface RouteDoc {
  summary: string;
  description?: string;
  /** Error ids this route answers with (SERVICE_UNAVAILABLE is added to every route). */
  errors?: ErrorId[];
  /** Documentation-only request body (the domain checks it). */
  body?: TSchema;
  /** The success answer's extra keys beside code/message/errmsg (JSON routes). */
  ok?: TSchema;
  /** A non-JSON success answer, e.g. `image/png`. */
  okType?: string;
}

const Str = (description: string, example: string, extra: object = {}) =>
  Type.String({ description, examples: [example], ...extra });

const RegisterBody = Type.Object(
  {
    username: Str('5–20 characters, letters, digits, _ or -, not all digits', 'meiduo_user'),
    password: Str('8–20 characters', 'Passw0rd!x'),
    password2: Str('the same password again', 'Passw0rd!x'),
    mobile: Str('mainland mobile, 11 digits', '13155667788'),
    sms_code: Str('the 6-digit code sent by GET /sms_codes/', '123456'),
    allow: Type.Union([Type.Boolean(), Type.String()], {
      description: 'the user agreement accepted: true (or "true")',
      examples: [true],
    }),
  },
  {
    examples: [
      {
        username: 'meiduo_user',
        password: 'Passw0rd!x',
        password2: 'Passw0rd!x',
        mobile: '13155667788',
        sms_code: '123456',
        allow: true,
      },
    ],
  },
);

const LoginBody = Type.Object(
  {
    username: Str('username or mobile', 'meiduo_user'),
    password: Str('the password', 'Passw0rd!x'),
    remembered: Type.Optional(
      Type.Boolean({ description: 'keep the session for 14 days (else until the browser closes)' }),
    ),
  },
  { examples: [{ username: 'meiduo_user', password: 'Passw0rd!x', remembered: true }] },
);

const CsrfToken = Type.Object({
  csrf_token: Type.String({ description: 'send it as X-CSRFToken on unsafe requests', minLength: 64 }),
});
const Count = Type.Object({ count: Type.Integer({ minimum: 0, maximum: 1, examples: [0] }) });
const Checks = Type.Object({
  checks: Type.Object({
    database: Type.Boolean(),
    code_store: Type.Boolean(),
    session_store: Type.Boolean(),
    queue: Type.Boolean(),
  }),
  test_mode: Type.Boolean(),
});

const ADMIN: ErrorId[] = ['ADMIN_UNAUTHORIZED', 'ADMIN_LIMIT', 'BAD_REQUEST'];
const CENTRE: ErrorId[] = [
  'CSRF_FAILED',
  'NOT_LOGGED_IN',
  'BAD_JSON',
  'MISSING_PARAMS',
  'BAD_REQUEST',
  'ACTION_LIMIT',
];

export const ROUTE_DOCS: Record<string, RouteDoc> = {
  'GET /csrf_token/': {
    summary: 'A CSRF token (and the csrftoken cookie) for unsafe requests',
    ok: CsrfToken,
  },
  'GET /image_codes/:uuid/': {
    summary: 'A captcha image; its text is kept under the uuid for IMAGE_CODE_TTL_SECONDS',
    errors: ['UUID_INVALID', 'IMAGE_CODE_LIMIT'],
    okType: 'image/jpeg',
  },
  'GET /sms_codes/:mobile/': {
    summary: 'Checks the captcha (one use) and queues an SMS code for the mobile',
    errors: [
      'MOBILE_INVALID',
      'MISSING_PARAMS',
      'BAD_REQUEST',
      'IMAGE_CODE_EXPIRED',
      'IMAGE_CODE_WRONG',
      'SMS_TOO_FREQUENT',
      'SMS_IP_LIMIT',
      'SMS_DAILY_LIMIT',
      'SMS_BUDGET_EXHAUSTED',
      'SMS_BLOCKED',
    ],
    ok: Type.Object({ resend_after: Type.Integer({ description: 'seconds', examples: [60] }) }),
  },
  'GET /usernames/:username/count/': {
    summary: 'Whether the username is taken (0 or 1)',
    errors: ['USERNAME_INVALID', 'COUNT_LIMIT'],
    ok: Count,
  },
  'GET /mobiles/:mobile/count/': {
    summary: 'Whether the mobile is registered (0 or 1)',
    errors: ['MOBILE_INVALID', 'COUNT_LIMIT'],
    ok: Count,
  },
  'POST /register/': {
    summary: 'Registers and logs in (session cookie, a fresh CSRF token)',
    errors: [
      'CSRF_FAILED',
      'BAD_JSON',
      'MISSING_PARAMS',
      'USERNAME_INVALID',
      'PASSWORD_INVALID',
      'PASSWORD_MISMATCH',
      'MOBILE_INVALID',
      'ALLOW_REQUIRED',
      'SMS_CODE_EXPIRED',
      'SMS_CODE_WRONG',
      'USERNAME_EXISTS',
      'MOBILE_EXISTS',
      'PAYLOAD_TOO_LARGE',
      'UNSUPPORTED_MEDIA_TYPE',
    ],
    body: RegisterBody,
    ok: CsrfToken,
  },
  'POST /login/': {
    summary: 'Logs in by username or mobile (session cookie, a fresh CSRF token)',
    errors: [
      'CSRF_FAILED',
      'BAD_JSON',
      'MISSING_PARAMS',
      'LOGIN_FAILED',
      'LOGIN_LIMIT',
      'PAYLOAD_TOO_LARGE',
      'UNSUPPORTED_MEDIA_TYPE',
    ],
    body: LoginBody,
    ok: CsrfToken,
  },
  'DELETE /logout/': {
    summary: 'Ends the session everywhere and clears the cookies',
    errors: ['CSRF_FAILED'],
  },
  'GET /info/': {
    summary: "The logged-in user's details",
    errors: ['NOT_LOGGED_IN'],
    ok: Type.Object({
      info_data: Type.Object({
        username: Type.String(),
        mobile: Type.String(),
        email: Type.String(),
        email_active: Type.Boolean(),
      }),
    }),
  },
  // User centre (docs/api.md §2 "User centre"); bodies are checked by the domain.
  'PUT /emails/': {
    summary: "Sets the user's email and mails a verification link",
    errors: [...CENTRE, 'EMAIL_INVALID', 'EMAIL_LIMIT'],
  },
  'PUT /emails/verification/': {
    summary: 'Confirms the email with the token of the mailed link',
    errors: ['CSRF_FAILED', 'MISSING_PARAMS', 'EMAIL_TOKEN_INVALID', 'ACTION_LIMIT'],
  },
  'PUT /password/': {
    summary: 'Changes the password (old one required); ends every session',
    errors: [...CENTRE, 'PASSWORD_INVALID', 'PASSWORD_MISMATCH', 'OLD_PASSWORD_WRONG', 'LOGIN_LIMIT'],
  },
  'POST /password_reset/sms_codes/': {
    summary: 'Find password, step 1: checks the captcha and sends a reset code to the account',
    errors: [
      'CSRF_FAILED',
      'BAD_JSON',
      'MISSING_PARAMS',
      'BAD_REQUEST',
      'IMAGE_CODE_EXPIRED',
      'IMAGE_CODE_WRONG',
      'ACCOUNT_NOT_FOUND',
      'SMS_TOO_FREQUENT',
      'SMS_DAILY_LIMIT',
      'SMS_IP_LIMIT',
      'SMS_BUDGET_EXHAUSTED',
      'ACTION_LIMIT',
    ],
  },
  'POST /password_reset/': {
    summary: 'Find password, step 2: a new password with the reset code; ends every session',
    errors: [
      'CSRF_FAILED',
      'BAD_JSON',
      'MISSING_PARAMS',
      'BAD_REQUEST',
      'PASSWORD_INVALID',
      'PASSWORD_MISMATCH',
      'SMS_CODE_EXPIRED',
      'SMS_CODE_WRONG',
      'ACTION_LIMIT',
    ],
  },
  'POST /mobile/sms_codes/': {
    summary: 'Change mobile, step 1: password checked, a code sent to the new mobile',
    errors: [
      ...CENTRE,
      'MOBILE_INVALID',
      'MOBILE_UNCHANGED',
      'PASSWORD_WRONG',
      'LOGIN_LIMIT',
      'MOBILE_EXISTS',
      'SMS_TOO_FREQUENT',
      'SMS_DAILY_LIMIT',
      'SMS_IP_LIMIT',
      'SMS_BUDGET_EXHAUSTED',
    ],
  },
  'PUT /mobile/': {
    summary: 'Change mobile, step 2: the new mobile with its code',
    errors: [...CENTRE, 'MOBILE_INVALID', 'SMS_CODE_EXPIRED', 'SMS_CODE_WRONG', 'MOBILE_EXISTS'],
  },
  'GET /sessions/': { summary: "The user's sessions (handles, not ids)", errors: ['NOT_LOGGED_IN'] },
  'DELETE /sessions/': {
    summary: 'Ends every session of the user but this one',
    errors: ['CSRF_FAILED', 'NOT_LOGGED_IN', 'ACTION_LIMIT'],
  },
  'DELETE /sessions/:handle/': {
    summary: 'Ends one session by its handle',
    errors: ['CSRF_FAILED', 'NOT_LOGGED_IN', 'SESSION_NOT_FOUND', 'ACTION_LIMIT'],
  },
  'GET /healthz': { summary: 'The process answers' },
  'GET /readyz': { summary: 'Every dependency answers (503 with the failed checks if not)', ok: Checks },
  'GET /metrics': {
    summary: 'Prometheus metrics (text format); only with METRICS_TOKEN, as its bearer token',
    errors: ['METRICS_UNAUTHORIZED'],
    okType: 'text/plain',
  },
  'GET /docs/openapi.json': { summary: 'This document' },
  'GET /docs': { summary: 'This document as a page', okType: 'text/html' },
  'GET /docs/docs.js': { summary: "The page's script", okType: 'text/javascript' },
  'GET /docs/docs.css': { summary: "The page's style sheet", okType: 'text/css' },
  // Admin API (docs/api.md §10)
  'GET /admin/queue/': { summary: 'SMS jobs by state', errors: ADMIN },
  'GET /admin/queue/failed/': { summary: 'Failed SMS jobs, newest first', errors: ADMIN },
  'POST /admin/queue/failed/:id/retry/': {
    summary: 'Runs a failed job again from its first attempt, under its id',
    errors: [...ADMIN, 'ADMIN_NOT_FOUND'],
  },
  'DELETE /admin/queue/failed/:id/': {
    summary: 'Discards a failed job',
    errors: [...ADMIN, 'ADMIN_NOT_FOUND'],
  },
  'DELETE /admin/users/:id/sessions/': {
    summary: 'Ends every session of a user by id',
    errors: [...ADMIN, 'ADMIN_NOT_FOUND'],
  },
  'DELETE /admin/users/by-username/:username/sessions/': {
    summary: 'Ends every session of a user by username',
    errors: [...ADMIN, 'ADMIN_NOT_FOUND'],
  },
  'GET /admin/audit/': { summary: 'The audit log by time, actor and action, newest first', errors: ADMIN },
  'PUT /admin/sms-verified/': {
    summary: 'Marks up to 1,000 numbers as verified (outside the ratio rule)',
    errors: ADMIN,
  },
  'GET /admin/sms-lists/': { summary: 'SMS block and allow list entries', errors: ADMIN },
  'PUT /admin/sms-lists/': { summary: 'Adds or replaces a block/allow list entry', errors: ADMIN },
  'DELETE /admin/sms-lists/:id/': { summary: 'Removes a block/allow list entry', errors: ADMIN },
  'GET /admin/sms-decisions/': {
    summary: 'SMS decision records by mobile, block, IP prefix, decision and time',
    errors: ADMIN,
  },
};
