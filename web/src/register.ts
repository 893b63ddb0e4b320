/**
 * The registration page (register.html): each field is checked as the person leaves it, with
 * the service's rules and messages; the captcha gates the SMS code; the SMS button counts down
 * only after a send the service accepted; server refusals are shown next to the field they
 * concern.
 */
import { type Answer, csrf, get, pathOf, succeeded, unsafe } from './api.js';
import { byId, Field, randomId } from './dom.js';
import {
  imageCodeIsValid,
  MESSAGES,
  mobileIsValid,
  passwordIsValid,
  smsCodeIsValid,
  usernameIsValid,
  waitText,
} from './rules.js';

const form = byId('register-form', HTMLFormElement);
const username = new Field('username');
const password = new Field('password');
const password2 = new Field('password2');
const mobile = new Field('mobile');
const imageCode = new Field('image_code');
const smsCode = new Field('sms_code');
const allow = new Field('allow');
const captchaButton = byId('captcha', HTMLButtonElement);
const captchaImage = byId('captcha-image', HTMLImageElement);
const smsButton = byId('send-sms', HTMLButtonElement);
const submitButton = byId('submit', HTMLButtonElement);
const formError = byId('form-error', HTMLElement);

const SMS_BUTTON_TEXT = smsButton.textContent ?? '获取短信验证码';
const SUBMIT_TEXT = submitButton.textContent ?? '注册';

// --- captcha -------------------------------------------------------------------------------

let imageCodeId = '';

/** A new image under a new id; the old one is spent or abandoned. */
function newCaptcha(): void {
  imageCodeId = randomId();
  captchaImage.src = pathOf`/image_codes/${imageCodeId}/`;
  imageCode.input.value = '';
}

captchaButton.addEventListener('click', () => {
  newCaptcha();
  imageCode.pass();
  imageCode.input.focus();
});
captchaImage.addEventListener('error', () => {
  imageCode.fail('图形验证码加载失败，请点击图片重试');
});

// --- checks (each returns whether the field is fine, and shows why not) --------------------

/** Results of the count endpoints for this page's life: a blur should not cost a request each time. */
const taken = new Map<string, boolean>();

/**
 * Asks the count endpoint whether `value` is taken. A lookup that fails (limit, network) does
 * not block the person: registration checks again.
 */
async function isTaken(kind: 'usernames' | 'mobiles', value: string): Promise<boolean> {
  const key = `${kind}/${value}`;
  const known = taken.get(key);
  if (known !== undefined) return known;
  const answer = await get(pathOf`/${kind}/${value}/count/`);
  if (!succeeded(answer)) return false;
  const result = (answer.body.count ?? 0) > 0;
  taken.set(key, result);
  return result;
}

async function checkUsername(): Promise<boolean> {
  const value = username.value;
  if (!usernameIsValid(value)) return username.fail(MESSAGES.USERNAME_INVALID);
  const exists = await isTaken('usernames', value);
  // Typed on meanwhile: this answer is about an older value; the next check judges the new one.
  if (username.value !== value) return true;
  return exists ? username.fail(MESSAGES.USERNAME_EXISTS) : username.pass();
}

function checkPassword(): boolean {
  return passwordIsValid(password.value) ? password.pass() : password.fail(MESSAGES.PASSWORD_INVALID);
}

function checkPassword2(): boolean {
  return password2.value === password.value ? password2.pass() : password2.fail(MESSAGES.PASSWORD_MISMATCH);
}

async function checkMobile(): Promise<boolean> {
  const value = mobile.value;
  if (!mobileIsValid(value)) return mobile.fail(MESSAGES.MOBILE_INVALID);
  const exists = await isTaken('mobiles', value);
  if (mobile.value !== value) return true;
  return exists ? mobile.fail(MESSAGES.MOBILE_EXISTS) : mobile.pass();
}

function checkImageCode(): boolean {
  return imageCodeIsValid(imageCode.value) ? imageCode.pass() : imageCode.fail(MESSAGES.IMAGE_CODE_REQUIRED);
}

function checkSmsCode(): boolean {
  return smsCodeIsValid(smsCode.value) ? smsCode.pass() : smsCode.fail(MESSAGES.SMS_CODE_REQUIRED);
}

function checkAllow(): boolean {
  return allow.input.checked ? allow.pass() : allow.fail(MESSAGES.ALLOW_REQUIRED);
}

/** The format part of each check, run while typing to lift an error as soon as it is fixed. */
const quickChecks = new Map<Field, () => boolean>([
  [username, () => usernameIsValid(username.value)],
  [password, () => passwordIsValid(password.value)],
  [password2, () => password2.value === password.value],
  [mobile, () => mobileIsValid(mobile.value)],
  [imageCode, () => imageCodeIsValid(imageCode.value)],
  [smsCode, () => smsCodeIsValid(smsCode.value)],
]);

const blurChecks = new Map<Field, () => unknown>([
  [username, checkUsername],
  [password, checkPassword],
  [password2, checkPassword2],
  [mobile, checkMobile],
  [imageCode, checkImageCode],
  [smsCode, checkSmsCode],
]);

for (const [field, check] of blurChecks) {
  // Leaving an untouched empty field says nothing; submitting does.
  field.input.addEventListener('blur', () => {
    if (field.input.value !== '' || field.invalid) void check();
  });
  field.input.addEventListener('input', () => {
    if (field.invalid && quickChecks.get(field)?.()) field.pass();
  });
}
// A changed password makes an already typed confirmation right or wrong.
password.input.addEventListener('blur', () => {
  if (password2.input.value !== '') checkPassword2();
});
allow.input.addEventListener('change', checkAllow);

// --- SMS code ------------------------------------------------------------------------------

let countdown: number | undefined;
/** The mobile the running countdown is for: the service's resend interval is per mobile. */
let countdownMobile = '';

function resetSmsButton(): void {
  window.clearInterval(countdown);
  countdown = undefined;
  smsButton.disabled = false;
  smsButton.textContent = SMS_BUTTON_TEXT;
}

/** Counts down to the moment the service accepts another send; wall-clock based, so a throttled tab stays right. */
function startCountdown(seconds: number, forMobile: string): void {
  countdownMobile = forMobile;
  const end = Date.now() + seconds * 1000;
  const tick = () => {
    const left = Math.ceil((end - Date.now()) / 1000);
    if (left <= 0) resetSmsButton();
    else smsButton.textContent = `${left}秒后重新获取`;
  };
  smsButton.disabled = true;
  tick();
  countdown = window.setInterval(tick, 250);
}

/** A refusal with a wait (429) says how long. */
function withWait(answer: Answer): string {
  const { message, retry_after } = answer.body;
  return typeof retry_after === 'number' ? `${message}（${waitText(retry_after)}后可重试）` : message;
}

async function sendSms(): Promise<void> {
  if (countdown !== undefined || smsButton.disabled) return;
  const imageOk = checkImageCode();
  smsButton.disabled = true;
  try {
    if (!(await checkMobile())) return mobile.input.focus();
    if (!imageOk) return imageCode.input.focus();
    smsButton.textContent = '发送中…';
    const query = `?image_code=${encodeURIComponent(imageCode.value)}&image_code_id=${encodeURIComponent(imageCodeId)}`;
    const answer = await get(pathOf`/sms_codes/${mobile.value}/` + query);
    // An image code serves one request, whatever its outcome: the next send needs a new one.
    newCaptcha();
    if (succeeded(answer)) {
      startCountdown(answer.body.resend_after ?? 60, mobile.value);
      smsCode.note('短信验证码已发送，请注意查收');
      smsCode.input.focus();
      return;
    }
    switch (answer.body.error) {
      case 'IMAGE_CODE_WRONG':
      case 'IMAGE_CODE_EXPIRED':
      case 'UUID_INVALID':
      case 'MISSING_PARAMS':
        imageCode.fail(answer.body.message);
        imageCode.input.focus();
        break;
      case 'MOBILE_INVALID':
        mobile.fail(answer.body.message);
        mobile.input.focus();
        break;
      default:
        smsCode.fail(withWait(answer));
    }
  } finally {
    if (countdown === undefined) resetSmsButton();
  }
}

smsButton.addEventListener('click', () => void sendSms());
// A corrected number may have its code at once; the wait was for the number it was sent to.
mobile.input.addEventListener('input', () => {
  if (countdown !== undefined && mobile.value !== countdownMobile) resetSmsButton();
});

// --- submit --------------------------------------------------------------------------------

/** Where each refusal of POST /register/ is shown (API.md §2 table). */
function showRegisterError(answer: Answer): void {
  const { error = '', message, attempts_left } = answer.body;
  let field: Field | undefined;
  let text = message;
  if (error === 'PASSWORD_MISMATCH') field = password2;
  else if (error.startsWith('USERNAME_')) field = username;
  else if (error.startsWith('PASSWORD_')) field = password;
  else if (error.startsWith('MOBILE_')) field = mobile;
  else if (error === 'ALLOW_REQUIRED') field = allow;
  else if (error.startsWith('SMS_CODE_')) {
    field = smsCode;
    if (error === 'SMS_CODE_WRONG' && typeof attempts_left === 'number') {
      text =
        attempts_left > 0 ? `${message}，还可以尝试${attempts_left}次` : `${message}，请重新获取短信验证码`;
    } else if (error === 'SMS_CODE_EXPIRED') {
      text = `${message}，请重新获取短信验证码`;
    }
  }
  if (error === 'USERNAME_EXISTS') taken.set(`usernames/${username.value}`, true);
  if (error === 'MOBILE_EXISTS') taken.set(`mobiles/${mobile.value}`, true);
  if (field) {
    field.fail(text);
    field.input.focus();
  } else {
    formError.textContent = withWait(answer);
  }
}

let submitting = false;

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  if (submitting) return;
  submitting = true;
  submitButton.disabled = true;
  submitButton.textContent = '注册中…';
  formError.textContent = '';
  let done = false;
  try {
    const checks = [
      await checkUsername(),
      checkPassword(),
      checkPassword2(),
      await checkMobile(),
      checkSmsCode(),
      checkAllow(),
    ];
    const fields = [username, password, password2, mobile, smsCode, allow];
    const firstBad = checks.indexOf(false);
    if (firstBad >= 0) {
      fields[firstBad]?.input.focus();
      return;
    }
    const answer = await unsafe('POST', '/register/', {
      username: username.value,
      password: password.input.value,
      password2: password2.input.value,
      mobile: mobile.value,
      sms_code: smsCode.value,
      allow: true,
    });
    if (succeeded(answer)) {
      done = true;
      window.location.assign('/');
      return;
    }
    showRegisterError(answer);
  } finally {
    submitting = false;
    // After success the page is leaving: keep the button disabled so it cannot be sent twice.
    if (!done) {
      submitButton.disabled = false;
      submitButton.textContent = SUBMIT_TEXT;
    }
  }
});

newCaptcha();
void csrf();
