/** The home page (index.html, also at /): greets the logged-in person and offers 退出. */
import { get, succeeded, unsafe } from './api.js';
import { byId, cookie } from './dom.js';

const guest = byId('guest', HTMLElement);
const member = byId('member', HTMLElement);
const greeting = byId('greeting', HTMLElement);
const accountName = byId('account-name', HTMLElement);
const accountMobile = byId('account-mobile', HTMLElement);
const accountEmail = byId('account-email', HTMLElement);
const logoutButton = byId('logout', HTMLButtonElement);
const status = byId('status', HTMLElement);
const topbarUser = byId('topbar-user', HTMLElement);
const topbarGuest = byId('topbar-guest', HTMLElement);
const topbarName = byId('topbar-name', HTMLElement);

/** 138****0000: enough for a person to recognise their number on a shared screen. */
function maskMobile(mobile: string): string {
  return mobile.length === 11 ? `${mobile.slice(0, 3)}****${mobile.slice(7)}` : mobile;
}

function showMember(username: string): void {
  greeting.textContent = `欢迎您：${username}`;
  accountName.textContent = username;
  topbarName.textContent = username;
  member.hidden = false;
  topbarUser.hidden = false;
  guest.hidden = true;
  topbarGuest.hidden = true;
}

function showGuest(): void {
  member.hidden = true;
  topbarUser.hidden = true;
  guest.hidden = false;
  topbarGuest.hidden = false;
}

async function load(): Promise<void> {
  // The cookie greets at once; /info/ then says whether the session is still alive.
  const remembered = cookie('username');
  if (remembered) showMember(remembered);
  const answer = await get('/info/');
  const info = answer.body.info_data;
  if (succeeded(answer) && info) {
    showMember(info.username);
    accountMobile.textContent = maskMobile(info.mobile);
    accountEmail.textContent = info.email || '未设置';
  } else if (answer.status === 401) {
    showGuest();
  } else if (!remembered) {
    showGuest();
    status.textContent = answer.body.message;
  } else {
    status.textContent = answer.body.message;
  }
}

logoutButton.addEventListener('click', async () => {
  logoutButton.disabled = true;
  const answer = await unsafe('DELETE', '/logout/');
  if (succeeded(answer)) {
    window.location.assign('/login.html');
    return;
  }
  logoutButton.disabled = false;
  status.textContent = answer.body.message;
});

void load();
