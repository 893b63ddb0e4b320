import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Accounts, StartedSession } from '../domain/accounts.js';
import { clientKey } from '../domain/client-ip.js';
import { ApiError } from '../domain/errors.js';
import type { Limiter } from '../domain/limits.js';
import type { User, UserRepository } from '../domain/ports.js';
import { type Registration, usernameIsValid } from '../domain/registration.js';
import { type Sessions, sessionSeen } from '../domain/sessions-list.js';
import { MOBILE_RULE } from '../domain/verification.js';
import { rotateCsrf } from '../plugins/csrf.js';
import { ok } from '../plugins/envelope.js';

export const SESSION_COOKIE = 'sessionid';
export const USERNAME_COOKIE = 'username';
const USERNAME_COOKIE_SECONDS = 15 * 24 * 3600;

export interface UserRouteOptions {
  registration: Registration;
  accounts: Accounts;
  users: UserRepository;
  limiter: Limiter;
  countLimitPerMinute: number;
  cookieSecure: boolean;
  /** The logged-in user with activity recorded (GET /sessions/ shows it). */
  sessions: Sessions;
}

/** The Django app "users": counts, register, login, logout, info. */
export async function userRoutes(app: FastifyInstance, opts: UserRouteOptions) {
  const { registration, accounts, users, limiter, cookieSecure } = opts;

  function setSessionCookies(reply: FastifyReply, user: User, session: StartedSession) {
    reply.setCookie(SESSION_COOKIE, session.id, {
      path: '/',
      httpOnly: true,
      sameSite: 'lax',
      secure: cookieSecure,
      ...(session.persistent ? { maxAge: session.maxAgeSeconds } : {}),
    });
    // Read by the pages' scripts to greet the user (欢迎您：username), hence not HttpOnly.
    reply.setCookie(USERNAME_COOKIE, user.username, {
      path: '/',
      httpOnly: false,
      sameSite: 'lax',
      secure: cookieSecure,
      ...(session.persistent ? { maxAge: USERNAME_COOKIE_SECONDS } : {}),
    });
  }

  const countLookup = (client: string) =>
    limiter.countAgainst('count-ip', client, opts.countLimitPerMinute, 60, 'COUNT_LIMIT');

  app.get<{ Params: { username: string } }>('/usernames/:username/count/', async (request) => {
    const { username } = request.params;
    if (!usernameIsValid(username)) throw new ApiError('USERNAME_INVALID');
    await countLookup(clientKey(request.ip));
    return ok('OK', { count: await users.countByUsername(username) });
  });

  app.get<{ Params: { mobile: string } }>('/mobiles/:mobile/count/', async (request) => {
    const { mobile } = request.params;
    if (!MOBILE_RULE.test(mobile)) throw new ApiError('MOBILE_INVALID');
    await countLookup(clientKey(request.ip));
    return ok('OK', { count: await users.countByMobile(mobile) });
  });

  app.post('/register/', async (request, reply) => {
    const user = await registration.register(request.body);
    const session = await accounts.startSession(
      user,
      true,
      request.cookies[SESSION_COOKIE],
      sessionSeen(request.ip, request.headers['user-agent']),
    );
    setSessionCookies(reply, user, session);
    return ok('注册成功', { csrf_token: rotateCsrf(reply) });
  });

  app.post('/login/', async (request, reply) => {
    const { user, session } = await accounts.login(
      request.body,
      clientKey(request.ip),
      request.cookies[SESSION_COOKIE],
      sessionSeen(request.ip, request.headers['user-agent']),
    );
    setSessionCookies(reply, user, session);
    return ok('登录成功', { csrf_token: rotateCsrf(reply) });
  });

  app.delete('/logout/', async (request, reply) => {
    await accounts.logout(request.cookies[SESSION_COOKIE]);
    reply.clearCookie(SESSION_COOKIE, { path: '/', httpOnly: true, sameSite: 'lax', secure: cookieSecure });
    reply.clearCookie(USERNAME_COOKIE, { path: '/', sameSite: 'lax', secure: cookieSecure });
    return ok('退出成功');
  });

  app.get('/info/', async (request) => {
    const current = await opts.sessions.current(
      request.cookies[SESSION_COOKIE],
      sessionSeen(request.ip, request.headers['user-agent']),
    );
    if (!current) throw new ApiError('NOT_LOGGED_IN');
    const { user } = current;
    return ok('OK', {
      info_data: {
        username: user.username,
        mobile: user.mobile,
        email: user.email,
        email_active: user.emailActive,
      },
    });
  });
}
