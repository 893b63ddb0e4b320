/**
 * The user centre (user_center_info.html): account info, email binding (a verification mail),
 * password change (every session ends, then login), mobile change (captcha, SMS to the new
 * number) and the list of logged-in devices, each of which can be ended.
 */
import { type Answer, get, pathOf, succeeded, unsafe } from './api.js';
import { byId, Field, whileBusy } from './dom.js';
import { MESSAGES, mobileIsValid, passwordIsValid, smsCodeIsValid } from './rules.js';
import { SmsStep, smsCodeText, withWait } from './sms-step.js';

const status = byId('status', HTMLElement);
const member = byId('member', HTMLElement);
const guest = byId('guest', HTMLElement);
const topbarUser = byId('topbar-user', HTMLElement);

/** 138****0000: enough for a person to recognise their number on a shared screen. */
function maskMobile(mobile: string): string {
  return mobile.length === 11 ? `${mobile.slice(0, 3)}****${mobile.slice(7)}` : mobile;
}

function showGuest(): void {
  member.hidden = true;
  topbarUser.hidden = true;
  guest.hidden = false;
}

/** True when the answer says the session is gone (then the page offers login instead). */
function loggedOut(answer: Answer): boolean {
  if (answer.status !== 401) return false;
  showGuest();
  return true;
}

// --- info ----------------------------------------------------------------------------------

async function loadInfo(): Promise<boolean> {
  const answer = await get('/info/');
  const info = answer.body.info_data;
  if (loggedOut(answer)) return false;
  if (!succeeded(answer) || !info) {
    status.textContent = answer.body.message;
    return false;
  }
  byId('info-username', HTMLElement).textContent = info.username;
  byId('topbar-name', HTMLElement).textContent = info.username;
  byId('info-mobile', HTMLElement).textContent = maskMobile(info.mobile);
  byId('info-email', HTMLElement).textContent = info.email || '未设置';
  const state = byId('info-email-state', HTMLElement);
  state.textContent = info.email ? (info.email_active ? '已验证' : '待验证') : '';
  state.classList.toggle('badge-ok', info.email_active);
  if (info.email && !email.input.value) email.input.value = info.email;
  member.hidden = false;
  topbarUser.hidden = false;
  guest.hidden = true;
  return true;
}

// --- email ---------------------------------------------------------------------------------

const email = new Field('email');
const EMAIL_RULE = /^[a-z0-9][\w.-]*@[a-z0-9-]+(\.[a-z]{2,5}){1,2}$/;
const emailButton = byId('email-submit', HTMLButtonElement);

byId('email-form', HTMLFormElement).addEventListener('submit', async (event) => {
  event.preventDefault();
  if (emailButton.disabled) return;
  if (!EMAIL_RULE.test(email.value) || email.value.length > 254) {
    email.fail('邮箱格式有误');
    return email.input.focus();
  }
  const answer = await whileBusy(emailButton, '发送中…', () =>
    unsafe('PUT', '/emails/', { email: email.value }),
  );
  if (loggedOut(answer)) return;
  if (succeeded(answer)) {
    email.note(`验证邮件已发送到 ${email.value}，请点击邮件中的链接完成验证`);
    await loadInfo();
    return;
  }
  email.fail(withWait(answer));
  email.input.focus();
});
email.input.addEventListener('input', () => {
  if (email.invalid) email.pass();
});

// --- password ------------------------------------------------------------------------------

const oldPassword = new Field('old_password');
const newPassword = new Field('new_password');
const newPassword2 = new Field('new_password2');
const passwordButton = byId('password-submit', HTMLButtonElement);
const passwordError = byId('password-form-error', HTMLElement);

byId('password-form', HTMLFormElement).addEventListener('submit', async (event) => {
  event.preventDefault();
  if (passwordButton.disabled) return;
  passwordError.textContent = '';
  const checks: Array<[Field, boolean, string]> = [
    [oldPassword, oldPassword.input.value !== '', MESSAGES.LOGIN_PASSWORD_REQUIRED],
    [newPassword, passwordIsValid(newPassword.input.value), MESSAGES.PASSWORD_INVALID],
    [newPassword2, newPassword2.input.value === newPassword.input.value, MESSAGES.PASSWORD_MISMATCH],
  ];
  let first: Field | undefined;
  for (const [field, ok, text] of checks) {
    if (ok) field.pass();
    else {
      field.fail(text);
      first ??= field;
    }
  }
  if (first) return first.input.focus();
  const answer = await whileBusy(passwordButton, '提交中…', () =>
    unsafe('PUT', '/password/', {
      old_password: oldPassword.input.value,
      new_password: newPassword.input.value,
      new_password2: newPassword2.input.value,
    }),
  );
  if (succeeded(answer)) {
    // Every session ended, this one too: log in again with the new password.
    window.location.assign('/login.html?notice=password&next=%2Fuser_center_info.html');
    return;
  }
  if (loggedOut(answer)) return;
  const field = {
    OLD_PASSWORD_WRONG: oldPassword,
    LOGIN_LIMIT: oldPassword,
    PASSWORD_INVALID: newPassword,
    PASSWORD_MISMATCH: newPassword2,
  }[answer.body.error ?? ''];
  if (field) {
    field.fail(withWait(answer));
    if (field === oldPassword) oldPassword.input.value = '';
    field.input.focus();
  } else passwordError.textContent = withWait(answer);
});

// --- mobile --------------------------------------------------------------------------------

const newMobile = new Field('new_mobile');
const mobilePassword = new Field('mobile_password');
const sms = new SmsStep();
const mobileButton = byId('mobile-submit', HTMLButtonElement);
const mobileError = byId('mobile-form-error', HTMLElement);
/** The number the last code was sent to: the code is bound to it. */
let codeMobile = '';

function showMobileError(answer: Answer): void {
  const error = answer.body.error ?? '';
  let field: Field | undefined;
  if (error.startsWith('MOBILE_')) field = newMobile;
  else if (error === 'PASSWORD_WRONG' || error === 'LOGIN_LIMIT') field = mobilePassword;
  else if (sms.showImageError(answer)) return;
  else if (error.startsWith('SMS_')) field = sms.smsCode;
  if (field) {
    field.fail(error.startsWith('SMS_CODE_') ? smsCodeText(answer) : withWait(answer));
    field.input.focus();
  } else mobileError.textContent = withWait(answer);
}

async function sendMobileSms(): Promise<void> {
  if (sms.counting || sms.button.disabled) return;
  mobileError.textContent = '';
  if (!mobileIsValid(newMobile.value)) {
    newMobile.fail(MESSAGES.MOBILE_INVALID);
    return newMobile.input.focus();
  }
  newMobile.pass();
  if (mobilePassword.input.value === '') {
    mobilePassword.fail(MESSAGES.LOGIN_PASSWORD_REQUIRED);
    return mobilePassword.input.focus();
  }
  mobilePassword.pass();
  if (sms.imageCode.value === '') {
    sms.imageCode.fail(MESSAGES.IMAGE_CODE_REQUIRED);
    return sms.imageCode.input.focus();
  }
  await sms.request(
    (image) =>
      unsafe('POST', '/mobile/sms_codes/', {
        mobile: newMobile.value,
        password: mobilePassword.input.value,
        ...image,
      }),
    (answer) => {
      if (loggedOut(answer)) return;
      if (!succeeded(answer)) return showMobileError(answer);
      codeMobile = newMobile.value;
      sms.sent(answer.body.resend_after ?? 60, '短信验证码已发送到新手机号，请注意查收');
    },
  );
}

sms.button.addEventListener('click', () => void sendMobileSms());
newMobile.input.addEventListener('input', () => {
  if (newMobile.invalid) newMobile.pass();
  if (sms.counting && newMobile.value !== codeMobile) sms.reset();
});

byId('mobile-form', HTMLFormElement).addEventListener('submit', async (event) => {
  event.preventDefault();
  if (mobileButton.disabled) return;
  mobileError.textContent = '';
  if (!mobileIsValid(newMobile.value)) {
    newMobile.fail(MESSAGES.MOBILE_INVALID);
    return newMobile.input.focus();
  }
  if (!smsCodeIsValid(sms.smsCode.value)) {
    sms.smsCode.fail(MESSAGES.SMS_CODE_REQUIRED);
    return sms.smsCode.input.focus();
  }
  const answer = await whileBusy(mobileButton, '提交中…', () =>
    unsafe('PUT', '/mobile/', { mobile: newMobile.value, sms_code: sms.smsCode.value }),
  );
  if (loggedOut(answer)) return;
  if (!succeeded(answer)) return showMobileError(answer);
  sms.reset();
  for (const field of [newMobile, mobilePassword, sms.imageCode]) {
    field.input.value = '';
    field.pass();
  }
  sms.smsCode.input.value = '';
  sms.smsCode.note('');
  mobileError.textContent = '';
  newMobile.note(answer.body.message);
  await loadInfo();
});

// --- sessions ------------------------------------------------------------------------------

interface SessionView {
  handle: string;
  current: boolean;
  created_at: string;
  last_seen_at: string;
  persistent: boolean;
  ip_prefix: string | null;
  user_agent: string | null;
}

const sessionsList = byId('sessions', HTMLUListElement);
const sessionsError = byId('sessions-error', HTMLElement);
const endOthers = byId('end-others', HTMLButtonElement);
const sessionsNote = byId('sessions-note', HTMLElement);

/** A browser and system a person recognises, from the user agent. */
function deviceName(agent: string | null): string {
  if (!agent) return '未知设备';
  const browser = /Edg\//.test(agent)
    ? 'Edge'
    : /Firefox\//.test(agent)
      ? 'Firefox'
      : /Chrom(e|ium)\//.test(agent)
        ? 'Chrome'
        : /Safari\//.test(agent)
          ? 'Safari'
          : '浏览器';
  const system = /iPhone|iPad/.test(agent)
    ? 'iOS'
    : /Android/.test(agent)
      ? 'Android'
      : /Windows/.test(agent)
        ? 'Windows'
        : /Mac OS X/.test(agent)
          ? 'macOS'
          : /Linux/.test(agent)
            ? 'Linux'
            : '';
  return system ? `${browser} · ${system}` : browser;
}

const when = (iso: string) =>
  new Date(iso).toLocaleString('zh-CN', { hour12: false, dateStyle: 'short', timeStyle: 'short' });

function sessionItem(session: SessionView): HTMLLIElement {
  const item = document.createElement('li');
  item.className = 'session';
  item.dataset.handle = session.handle;
  const text = document.createElement('div');
  const name = document.createElement('strong');
  name.textContent = deviceName(session.user_agent);
  text.append(name);
  if (session.current) {
    const badge = document.createElement('span');
    badge.className = 'badge badge-ok';
    badge.textContent = '本设备';
    text.append(' ', badge);
  }
  const detail = document.createElement('p');
  detail.className = 'hint';
  detail.textContent = [
    `最近使用 ${when(session.last_seen_at)}`,
    session.ip_prefix ? `IP ${session.ip_prefix}` : '',
    session.persistent ? '记住登录' : '',
  ]
    .filter(Boolean)
    .join(' · ');
  text.append(detail);
  const end = document.createElement('button');
  end.type = 'button';
  end.className = 'button button-quiet';
  end.textContent = '退出';
  end.setAttribute('aria-label', `退出 ${name.textContent}${session.current ? '（本设备）' : ''}`);
  end.addEventListener('click', async () => {
    const answer = await whileBusy(end, '退出中…', () =>
      unsafe('DELETE', pathOf`/sessions/${session.handle}/`),
    );
    if (succeeded(answer) && answer.body.current) {
      window.location.assign('/login.html');
      return;
    }
    if (loggedOut(answer)) return;
    if (!succeeded(answer) && answer.body.error !== 'SESSION_NOT_FOUND') {
      sessionsError.textContent = withWait(answer);
      return;
    }
    await loadSessions();
  });
  item.append(text, end);
  return item;
}

async function loadSessions(): Promise<void> {
  sessionsNote.textContent = '';
  const answer = await get('/sessions/');
  if (loggedOut(answer)) return;
  if (!succeeded(answer)) {
    sessionsError.textContent = withWait(answer);
    return;
  }
  sessionsError.textContent = '';
  const sessions = (answer.body as unknown as { sessions: SessionView[] }).sessions;
  sessionsList.replaceChildren(...sessions.map(sessionItem));
  endOthers.hidden = !sessions.some((s) => !s.current);
}

endOthers.addEventListener('click', async () => {
  const answer = await whileBusy(endOthers, '退出中…', () => unsafe('DELETE', '/sessions/'));
  if (loggedOut(answer)) return;
  if (!succeeded(answer)) {
    sessionsError.textContent = withWait(answer);
    return;
  }
  await loadSessions();
  sessionsNote.textContent = `已退出${answer.body.ended ?? 0}台其他设备`;
});

// --- logout --------------------------------------------------------------------------------

const logoutButton = byId('logout', HTMLButtonElement);
logoutButton.addEventListener('click', async () => {
  const answer = await whileBusy(logoutButton, '退出中…', () => unsafe('DELETE', '/logout/'));
  if (succeeded(answer)) window.location.assign('/login.html');
  else status.textContent = answer.body.message;
});

void loadInfo().then((ok) => {
  if (!ok) return;
  sms.newCaptcha();
  void loadSessions();
});
