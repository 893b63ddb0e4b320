/**
 * The registration rules of API.md §2, checked in the page so that a person learns of a
 * mistake when leaving the field. The server checks them again; test/e2e/page-rules.test.ts
 * keeps the two in step.
 */

export const MESSAGES = {
  USERNAME_INVALID: '请输入5-20个字符的用户名且不能为纯数字',
  USERNAME_EXISTS: '用户名已存在',
  PASSWORD_INVALID: '请输入8-20位的密码',
  PASSWORD_MISMATCH: '两次输入的密码不一致',
  MOBILE_INVALID: '手机号格式有误',
  MOBILE_EXISTS: '手机号已存在',
  IMAGE_CODE_REQUIRED: '请输入图形验证码',
  IMAGE_CODE_WRONG: '图形验证码有误',
  SMS_CODE_REQUIRED: '请输入6位短信验证码',
  ALLOW_REQUIRED: '请勾选用户协议',
  LOGIN_USERNAME_REQUIRED: '请输入用户名或手机号',
  LOGIN_PASSWORD_REQUIRED: '请输入密码',
} as const;

const USERNAME_RULE = /^[a-zA-Z0-9_-]{5,20}$/;
/** Printable ASCII without the space. */
const PASSWORD_RULE = /^[\x21-\x7e]{8,20}$/;
const MOBILE_RULE = /^1[3-9]\d{9}$/;
/** Captcha texts are 4 characters of an alphabet of capitals and digits; any case is accepted. */
const IMAGE_CODE_RULE = /^[A-Za-z0-9]{4}$/;
const SMS_CODE_RULE = /^\d{6}$/;

export function usernameIsValid(username: string): boolean {
  return USERNAME_RULE.test(username) && !/^\d+$/.test(username);
}

export function passwordIsValid(password: string): boolean {
  return PASSWORD_RULE.test(password);
}

export function mobileIsValid(mobile: string): boolean {
  return MOBILE_RULE.test(mobile);
}

export function imageCodeIsValid(code: string): boolean {
  return IMAGE_CODE_RULE.test(code);
}

export function smsCodeIsValid(code: string): boolean {
  return SMS_CODE_RULE.test(code);
}

/** Seconds as a person reads a wait: 60秒, 15分钟 (rounded up). */
export function waitText(seconds: number): string {
  const s = Math.max(1, Math.ceil(seconds));
  return s < 120 ? `${s}秒` : `${Math.ceil(s / 60)}分钟`;
}

/**
 * Where to go after login: the absolute URL of a same-origin `?next=` path, else the home page.
 * Anything that could leave the origin (`//host`, `/\\host`, `https:…`) goes home; the answer is
 * absolute because a path such as `/.//host` normalises to `//host`, which a browser would
 * read as another host.
 */
export function nextUrl(next: string | null, origin: string): string {
  const home = `${origin}/`;
  if (!next?.startsWith('/') || next.startsWith('//') || next.startsWith('/\\')) return home;
  try {
    const url = new URL(next, origin);
    return url.origin === origin ? url.href : home;
  } catch {
    return home;
  }
}
