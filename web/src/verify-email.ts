/**
 * The page the verification mail links to (success_verify_email.html?token=…): it spends the
 * token once (PUT /emails/verification/) and says whether the address is now verified. The
 * token is dropped from the address bar at once, so it stays out of history and bookmarks.
 */
import { unsafe } from './api.js';
import { byId } from './dom.js';

const title = byId('title', HTMLElement);
const status = byId('verify-status', HTMLElement);

async function verify(): Promise<void> {
  const token = new URLSearchParams(window.location.search).get('token') ?? '';
  window.history.replaceState(null, '', window.location.pathname);
  if (token === '') {
    title.textContent = '邮箱验证失败';
    status.textContent = '链接不完整，请从验证邮件中重新打开';
    return;
  }
  const answer = await unsafe('PUT', `/emails/verification/?token=${encodeURIComponent(token)}`);
  if (answer.status === 200 && answer.body.code === 0) {
    const email = answer.body.email ?? '';
    title.textContent = '邮箱验证成功';
    status.textContent = email ? `${email} 已通过验证` : answer.body.message;
    return;
  }
  title.textContent = '邮箱验证失败';
  status.textContent =
    answer.body.error === 'EMAIL_TOKEN_INVALID'
      ? '链接无效或已过期，请在用户中心重新发送验证邮件'
      : answer.body.message;
}

void verify();
