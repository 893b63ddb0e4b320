/**
 * The job "send verification email". It carries the user id and the address only: the worker
 * makes the token as it sends and stores only its hash, so that no queue, log or web process
 * ever holds a live link, and a retried send (the previous attempt delivered nothing) carries a
 * fresh token while the previous one is void.
 */
import type { EmailTokens } from '../domain/email-binding.js';
import type {
  EmailJob,
  EmailProvider,
  JobHandler,
  JobKind,
  JobOutcome,
  UserRepository,
} from '../domain/ports.js';

export const SEND_EMAIL_JOB = 'send-verification-email';

/** a****@example.com: enough to find a complaint in the log. */
export function maskEmail(email: string): string {
  const at = email.lastIndexOf('@');
  if (at < 1) return '***';
  return `${email[0]}****${email.slice(at)}`;
}

export const EMAIL_JOB_KIND: JobKind<EmailJob> = {
  name: SEND_EMAIL_JOB,
  label: 'email',
  pick: (job) => ({ userId: job.userId, email: job.email }),
  logFields: (job) => ({ userId: job.userId, email: maskEmail(job.email) }),
};

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** The verification mail (Meiduo's wording). */
export function verificationMessage(username: string, email: string, link: string, ttlHours: number) {
  const subject = '美多商城邮箱验证';
  const text =
    `尊敬的用户${username}，您好！\n\n感谢您使用美多商城。您的邮箱为：${email}。请点击此链接激活您的邮箱` +
    `（${ttlHours} 小时内有效）：\n\n${link}\n\n如果这不是您本人的操作，请忽略本邮件。\n`;
  const html =
    `<p>尊敬的用户${escapeHtml(username)}，您好！</p><p>感谢您使用美多商城。</p>` +
    `<p>您的邮箱为：${escapeHtml(email)}。请点击此链接激活您的邮箱（${ttlHours} 小时内有效）：</p>` +
    `<p><a href="${escapeHtml(link)}">${escapeHtml(link)}</a></p><p>如果这不是您本人的操作，请忽略本邮件。</p>`;
  return { subject, text, html };
}

export interface SendEmailDeps {
  users: UserRepository;
  tokens: EmailTokens;
  email: EmailProvider;
  /** The link base: the token is appended (EMAIL_VERIFY_URL). */
  verifyUrl: string;
  tokenTtlSeconds: number;
}

export function createSendEmailHandler(deps: SendEmailDeps): JobHandler<EmailJob> {
  const { users, tokens, email: provider, verifyUrl } = deps;
  const ttlHours = Math.max(1, Math.round(deps.tokenTtlSeconds / 3600));
  return async (job, info): Promise<JobOutcome> => {
    // A database or store that is down throws here; the queue counts that as transient.
    const user = await users.findById(job.userId);
    if (!user?.isActive) return { kind: 'skipped', provider: provider.name, detail: 'user gone or inactive' };
    if (user.email !== job.email)
      return { kind: 'skipped', provider: provider.name, detail: 'email changed since' };
    if (user.emailActive)
      return { kind: 'skipped', provider: provider.name, detail: 'email already verified' };
    const token = await tokens.issue(user.id, job.email);
    const message = verificationMessage(user.username, job.email, `${verifyUrl}${token}`, ttlHours);
    // As the SMS job: a run that lost its job leaves the send to the run that has it now.
    if (info.stillHeld && !(await info.stillHeld())) {
      return {
        kind: 'skipped',
        provider: provider.name,
        detail: 'the job passed to another run before the send',
      };
    }
    return provider.send({ to: job.email, ...message, idempotencyKey: info.id });
  };
}
