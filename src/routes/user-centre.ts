import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import Type from 'typebox';
import { clientKey } from '../domain/client-ip.js';
import type { EmailBinding } from '../domain/email-binding.js';
import { ApiError } from '../domain/errors.js';
import type { Limiter } from '../domain/limits.js';
import type { MobileChange } from '../domain/mobile-change.js';
import type { PasswordChange } from '../domain/password-change.js';
import type { PasswordReset } from '../domain/password-reset.js';
import type { User } from '../domain/ports.js';
import { type Sessions, sessionSeen } from '../domain/sessions-list.js';
import { ok } from '../plugins/envelope.js';
import { SESSION_COOKIE, USERNAME_COOKIE } from './users.js';

export interface UserCentreOptions {
  emailBinding: EmailBinding;
  passwordChange: PasswordChange;
  passwordReset: PasswordReset;
  mobileChange: MobileChange;
  sessions: Sessions;
  limiter: Limiter;
  perIpPerMinute: number;
  perUserPerMinute: number;
  cookieSecure: boolean;
}

const TokenQuery = Type.Object({ token: Type.Optional(Type.String({ maxLength: 1024 })) });
const HANDLE = /^[A-Za-z0-9_-]{22}$/;

/** The user centre (API.md §2 "User centre"): email, password, password reset, mobile, sessions. */
export async function userCentreRoutes(app: FastifyInstance, opts: UserCentreOptions) {
  const { emailBinding, passwordChange, passwordReset, mobileChange, sessions, limiter } = opts;

  /** The generic per-IP limit of each endpoint (its own counter). */
  const perIp = (request: FastifyRequest, name: string) =>
    limiter.countAgainst(`uc-${name}-ip`, clientKey(request.ip), opts.perIpPerMinute, 60, 'ACTION_LIMIT');

  /** Per-IP limit, the session's user (401 without), then the per-user limit. */
  async function loggedIn(request: FastifyRequest, name: string): Promise<{ user: User; idHash: string }> {
    await perIp(request, name);
    const current = await sessions.current(
      request.cookies[SESSION_COOKIE],
      sessionSeen(request.ip, request.headers['user-agent']),
    );
    if (!current) throw new ApiError('NOT_LOGGED_IN');
    await limiter.countAgainst(
      `uc-${name}-user`,
      String(current.user.id),
      opts.perUserPerMinute,
      60,
      'ACTION_LIMIT',
    );
    return current;
  }

  function clearSessionCookies(reply: FastifyReply) {
    reply.clearCookie(SESSION_COOKIE, {
      path: '/',
      httpOnly: true,
      sameSite: 'lax',
      secure: opts.cookieSecure,
    });
    reply.clearCookie(USERNAME_COOKIE, { path: '/', sameSite: 'lax', secure: opts.cookieSecure });
  }

  app.put('/emails/', async (request) => {
    const { user } = await loggedIn(request, 'email');
    const email = await emailBinding.bind(user, request.body);
    return ok('邮件保存成功', { email });
  });

  app.put<{ Querystring: { token?: string } }>(
    '/emails/verification/',
    { schema: { querystring: TokenQuery } },
    async (request) => {
      await perIp(request, 'email-verify');
      const email = await emailBinding.verify(request.query.token);
      return ok('邮箱验证成功', { email });
    },
  );

  app.put('/password/', async (request, reply) => {
    const { user } = await loggedIn(request, 'password');
    await passwordChange.change(user, request.body, clientKey(request.ip));
    clearSessionCookies(reply);
    return ok('修改密码成功');
  });

  app.post('/password_reset/sms_codes/', async (request) => {
    await perIp(request, 'reset-sms');
    const { mobile, resendAfterSeconds } = await passwordReset.sendCode(request.body, clientKey(request.ip));
    return ok('发送短信成功', { mobile, resend_after: resendAfterSeconds });
  });

  app.post('/password_reset/', async (request, reply) => {
    await perIp(request, 'reset');
    await passwordReset.reset(request.body);
    clearSessionCookies(reply);
    return ok('密码重置成功');
  });

  app.post('/mobile/sms_codes/', async (request) => {
    const { user } = await loggedIn(request, 'mobile-sms');
    const { resendAfterSeconds } = await mobileChange.sendCode(user, request.body, clientKey(request.ip));
    return ok('发送短信成功', { resend_after: resendAfterSeconds });
  });

  app.put('/mobile/', async (request) => {
    const { user } = await loggedIn(request, 'mobile');
    const mobile = await mobileChange.change(user, request.body);
    return ok('手机号修改成功', { mobile });
  });

  app.get('/sessions/', async (request) => {
    const { user, idHash } = await loggedIn(request, 'sessions');
    return ok('OK', { sessions: await sessions.list(user.id, idHash) });
  });

  app.delete('/sessions/', async (request) => {
    const { user, idHash } = await loggedIn(request, 'sessions-end');
    return ok('OK', { ended: await sessions.endOthers(user.id, idHash) });
  });

  app.delete<{ Params: { handle: string } }>('/sessions/:handle/', async (request, reply) => {
    const { user, idHash } = await loggedIn(request, 'sessions-end');
    if (!HANDLE.test(request.params.handle)) throw new ApiError('SESSION_NOT_FOUND');
    const { current } = await sessions.endOne(user.id, request.params.handle, idHash);
    if (current) clearSessionCookies(reply);
    return ok('OK', { current });
  });
}
