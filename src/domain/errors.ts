/**
 * The one table of errors (API.md §5): stable id → HTTP status → Chinese message.
 * Every error answer of the service is built from this table.
 */
export const ERRORS = {
  BAD_JSON: [400, '请求数据格式有误'],
  BAD_REQUEST: [400, '请求参数有误'],
  MISSING_PARAMS: [400, '缺少必传参数'],
  UUID_INVALID: [400, '图形验证码标识有误'],
  MOBILE_INVALID: [400, '手机号格式有误'],
  IMAGE_CODE_EXPIRED: [400, '图形验证码失效'],
  IMAGE_CODE_WRONG: [400, '图形验证码有误'],
  USERNAME_INVALID: [400, '请输入5-20个字符的用户名且不能为纯数字'],
  PASSWORD_INVALID: [400, '请输入8-20位的密码'],
  PASSWORD_MISMATCH: [400, '两次输入的密码不一致'],
  ALLOW_REQUIRED: [400, '请勾选用户协议'],
  SMS_CODE_EXPIRED: [400, '短信验证码失效'],
  SMS_CODE_WRONG: [400, '短信验证码有误'],
  LOGIN_FAILED: [400, '用户名或密码错误'],
  EMAIL_INVALID: [400, '邮箱格式有误'],
  EMAIL_TOKEN_INVALID: [400, '邮箱验证链接无效或已过期'],
  OLD_PASSWORD_WRONG: [400, '原始密码错误'],
  PASSWORD_WRONG: [400, '密码错误'],
  ACCOUNT_NOT_FOUND: [400, '账号不存在'],
  MOBILE_UNCHANGED: [400, '新手机号与当前手机号相同'],
  NOT_LOGGED_IN: [401, '用户未登录'],
  CSRF_FAILED: [403, 'CSRF验证失败，请刷新页面后重试'],
  NOT_FOUND: [404, '请求的资源不存在'],
  SESSION_NOT_FOUND: [404, '会话不存在或已结束'],
  METHOD_NOT_ALLOWED: [405, '请求方法不被允许'],
  USERNAME_EXISTS: [409, '用户名已存在'],
  MOBILE_EXISTS: [409, '手机号已存在'],
  REQUEST_TIMEOUT: [408, '请求超时，请重试'],
  PAYLOAD_TOO_LARGE: [413, '请求数据过大'],
  URI_TOO_LONG: [414, '请求地址过长'],
  UNSUPPORTED_MEDIA_TYPE: [415, '请求数据格式有误'],
  HEADERS_TOO_LARGE: [431, '请求头过大'],
  SMS_TOO_FREQUENT: [429, '发送短信过于频繁'],
  SMS_DAILY_LIMIT: [429, '今日短信发送次数已达上限'],
  SMS_IP_LIMIT: [429, '短信发送过于频繁，请稍后再试'],
  SMS_BUDGET_EXHAUSTED: [429, '短信服务繁忙，请稍后再试'],
  // One answer for the block list and the unverified-code ratio: no hint which one refused.
  SMS_BLOCKED: [429, '短信发送受限，请稍后再试'],
  IMAGE_CODE_LIMIT: [429, '图形验证码请求过于频繁'],
  COUNT_LIMIT: [429, '查询过于频繁，请稍后再试'],
  LOGIN_LIMIT: [429, '登录失败次数过多，请稍后再试'],
  EMAIL_LIMIT: [429, '邮件发送过于频繁，请稍后再试'],
  ACTION_LIMIT: [429, '操作过于频繁，请稍后再试'],
  SERVICE_UNAVAILABLE: [503, '服务繁忙，请稍后再试'],
  // The SMS vendor has no template for this purpose (docs/sms-vendors.md): nothing is sent.
  SMS_PURPOSE_NOT_CONFIGURED: [503, '短信服务暂未开通此功能'],
  // Admin API (docs/api.md §10): its own ids, so an operator's script never mistakes them.
  ADMIN_UNAUTHORIZED: [401, '管理令牌无效'],
  ADMIN_NOT_FOUND: [404, '管理对象不存在'],
  ADMIN_LIMIT: [429, '管理接口请求过于频繁'],
  METRICS_UNAUTHORIZED: [401, '监控令牌无效'],
} as const satisfies Record<string, readonly [number, string]>;

export type ErrorId = keyof typeof ERRORS;

/** Extra keys an error answer may carry next to code/error/message/errmsg. */
export interface ErrorExtra {
  retry_after?: number;
  attempts_left?: number;
  /** /readyz: which dependency answered. */
  checks?: Record<string, boolean>;
  test_mode?: boolean;
}

/** A refusal the client can act on. Routes throw it; the error handler renders it. */
export class ApiError extends Error {
  readonly id: ErrorId;
  readonly status: number;
  readonly extra: ErrorExtra;

  constructor(id: ErrorId, extra: ErrorExtra = {}) {
    super(ERRORS[id][1]);
    this.name = 'ApiError';
    this.id = id;
    this.status = ERRORS[id][0];
    this.extra = extra;
  }
}

/** A dependency (database, store, queue) failed: answered with 503, details only in the log. */
/**
 * A store that is there but busy with another writer right now (SQLite's write lock held by
 * another process): worth another try in a moment, not an outage.
 */
export class StoreBusyError extends Error {
  constructor(cause: unknown) {
    super('store busy', { cause });
    this.name = 'StoreBusyError';
  }
}

export class DependencyError extends Error {
  constructor(
    readonly dependency: 'database' | 'code-store' | 'session-store' | 'queue' | 'cpu-pool',
    cause: unknown,
  ) {
    super(`${dependency} unavailable`, { cause });
    this.name = 'DependencyError';
  }
}
