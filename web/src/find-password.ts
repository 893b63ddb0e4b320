/**
 * Find password (find_password.html): account + captcha → an SMS code to the account's mobile
 * (shown masked); code + new password → every session ends; then login.
 */
import { type Answer, csrf, succeeded, unsafe } from './api.js';
import { byId, Field, whileBusy } from './dom.js';
import { MESSAGES, passwordIsValid, smsCodeIsValid } from './rules.js';
import { SmsStep, smsCodeText, withWait } from './sms-step.js';

const account = new Field('account');
const password = new Field('password');
const password2 = new Field('password2');
const sms = new SmsStep();
const submitButton = byId('submit', HTMLButtonElement);
const formError = byId('form-error', HTMLElement);
/** The account the last code was sent for: the code belongs to its mobile. */
let codeAccount = '';

function showError(answer: Answer): void {
  const error = answer.body.error ?? '';
  let field: Field | undefined;
  if (error === 'ACCOUNT_NOT_FOUND') field = account;
  else if (error === 'PASSWORD_INVALID') field = password;
  else if (error === 'PASSWORD_MISMATCH') field = password2;
  else if (sms.showImageError(answer)) return;
  else if (error.startsWith('SMS_')) field = sms.smsCode;
  if (field) {
    field.fail(error.startsWith('SMS_CODE_') ? smsCodeText(answer) : withWait(answer));
    field.input.focus();
  } else formError.textContent = withWait(answer);
}

async function sendSms(): Promise<void> {
  if (sms.counting || sms.button.disabled) return;
  formError.textContent = '';
  if (account.value === '') {
    account.fail(MESSAGES.LOGIN_USERNAME_REQUIRED);
    return account.input.focus();
  }
  account.pass();
  if (sms.imageCode.value === '') {
    sms.imageCode.fail(MESSAGES.IMAGE_CODE_REQUIRED);
    return sms.imageCode.input.focus();
  }
  await sms.request(
    (image) => unsafe('POST', '/password_reset/sms_codes/', { account: account.value, ...image }),
    (answer) => {
      if (!succeeded(answer)) return showError(answer);
      codeAccount = account.value;
      sms.sent(answer.body.resend_after ?? 60, `短信验证码已发送到 ${answer.body.mobile ?? ''}，请注意查收`);
    },
  );
}

sms.button.addEventListener('click', () => void sendSms());
account.input.addEventListener('input', () => {
  if (account.invalid) account.pass();
  if (sms.counting && account.value !== codeAccount) sms.reset();
});

byId('reset-form', HTMLFormElement).addEventListener('submit', async (event) => {
  event.preventDefault();
  if (submitButton.disabled) return;
  formError.textContent = '';
  const checks: Array<[Field, boolean, string]> = [
    [account, account.value !== '', MESSAGES.LOGIN_USERNAME_REQUIRED],
    [sms.smsCode, smsCodeIsValid(sms.smsCode.value), MESSAGES.SMS_CODE_REQUIRED],
    [password, passwordIsValid(password.input.value), MESSAGES.PASSWORD_INVALID],
    [password2, password2.input.value === password.input.value, MESSAGES.PASSWORD_MISMATCH],
  ];
  let first: Field | undefined;
  for (const [field, ok, text] of checks) {
    if (ok) {
      if (field !== sms.smsCode) field.pass();
    } else {
      field.fail(text);
      first ??= field;
    }
  }
  if (first) return first.input.focus();
  const answer = await whileBusy(submitButton, '提交中…', () =>
    unsafe('POST', '/password_reset/', {
      account: account.value,
      sms_code: sms.smsCode.value,
      password: password.input.value,
      password2: password2.input.value,
    }),
  );
  if (succeeded(answer)) {
    window.location.assign('/login.html?notice=reset');
    return;
  }
  showError(answer);
});

sms.newCaptcha();
void csrf();
