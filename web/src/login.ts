/** The login page (login.html): username or mobile, password, 记住登录; then home or `?next=`. */
import { csrf, succeeded, unsafe } from './api.js';
import { byId, Field } from './dom.js';
import { MESSAGES, nextUrl, waitText } from './rules.js';

const form = byId('login-form', HTMLFormElement);
const username = new Field('username');
const password = new Field('password');
const remembered = byId('remembered', HTMLInputElement);
const submitButton = byId('submit', HTMLButtonElement);
const formError = byId('form-error', HTMLElement);
const SUBMIT_TEXT = submitButton.textContent ?? '登录';

/** Why the person was sent here (find password, password change): every session had ended. */
const NOTICES: Record<string, string> = {
  reset: '密码已重置，请使用新密码登录',
  password: '密码已修改，请使用新密码重新登录',
};
byId('form-note', HTMLElement).textContent =
  NOTICES[new URLSearchParams(window.location.search).get('notice') ?? ''] ?? '';

const checkUsername = () =>
  username.value !== '' ? username.pass() : username.fail(MESSAGES.LOGIN_USERNAME_REQUIRED);
const checkPassword = () =>
  password.input.value !== '' ? password.pass() : password.fail(MESSAGES.LOGIN_PASSWORD_REQUIRED);

for (const [field, check] of [
  [username, checkUsername],
  [password, checkPassword],
] as const) {
  field.input.addEventListener('input', () => {
    if (field.invalid) check();
  });
}

let submitting = false;

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  if (submitting) return;
  formError.textContent = '';
  const userOk = checkUsername();
  const passwordOk = checkPassword();
  if (!userOk) return username.input.focus();
  if (!passwordOk) return password.input.focus();

  submitting = true;
  submitButton.disabled = true;
  submitButton.textContent = '登录中…';
  let done = false;
  try {
    const answer = await unsafe('POST', '/login/', {
      username: username.value,
      password: password.input.value,
      remembered: remembered.checked,
    });
    if (succeeded(answer)) {
      done = true;
      window.location.assign(
        nextUrl(new URLSearchParams(window.location.search).get('next'), window.location.origin),
      );
      return;
    }
    const { error, message, retry_after } = answer.body;
    formError.textContent =
      error === 'LOGIN_LIMIT' && typeof retry_after === 'number'
        ? `${message}（${waitText(retry_after)}后可重试）`
        : message;
    if (error === 'LOGIN_FAILED') {
      // Which of the two is wrong is not said (API.md §2): both are marked, the password is retyped.
      username.input.setAttribute('aria-invalid', 'true');
      password.input.setAttribute('aria-invalid', 'true');
      password.input.value = '';
      password.input.focus();
    }
  } finally {
    submitting = false;
    if (!done) {
      submitButton.disabled = false;
      submitButton.textContent = SUBMIT_TEXT;
    }
  }
});

void csrf();
