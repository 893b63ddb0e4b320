/**
 * The captcha and the SMS button of the user-centre flows (find password, change mobile): a
 * one-use image code gates each send; the button counts down the service's resend interval.
 */
import { type Answer, pathOf } from './api.js';
import { byId, Field, randomId } from './dom.js';
import { waitText } from './rules.js';

/** A refusal with a wait (429) says how long. */
export function withWait(answer: Answer): string {
  const { message, retry_after } = answer.body;
  return typeof retry_after === 'number' ? `${message}（${waitText(retry_after)}后可重试）` : message;
}

/** An SMS-code refusal as a person reads it: the attempts left, or what to do next. */
export function smsCodeText(answer: Answer): string {
  const { error, message, attempts_left } = answer.body;
  if (error === 'SMS_CODE_WRONG' && typeof attempts_left === 'number')
    return attempts_left > 0
      ? `${message}，还可以尝试${attempts_left}次`
      : `${message}，请重新获取短信验证码`;
  if (error === 'SMS_CODE_EXPIRED') return `${message}，请重新获取短信验证码`;
  return withWait(answer);
}

export class SmsStep {
  readonly imageCode = new Field('image_code');
  readonly smsCode = new Field('sms_code');
  readonly button = byId('send-sms', HTMLButtonElement);
  private readonly captchaImage = byId('captcha-image', HTMLImageElement);
  private readonly buttonText = this.button.textContent ?? '获取短信验证码';
  private countdown: number | undefined;
  imageCodeId = '';

  constructor() {
    byId('captcha', HTMLButtonElement).addEventListener('click', () => {
      this.newCaptcha();
      this.imageCode.pass();
      this.imageCode.input.focus();
    });
    this.captchaImage.addEventListener('error', () => {
      this.imageCode.fail('图形验证码加载失败，请点击图片重试');
    });
  }

  get counting(): boolean {
    return this.countdown !== undefined;
  }

  /** A new image under a new id; the old one is spent or abandoned. */
  newCaptcha(): void {
    this.imageCodeId = randomId();
    this.captchaImage.src = pathOf`/image_codes/${this.imageCodeId}/`;
    this.imageCode.input.value = '';
  }

  reset(): void {
    window.clearInterval(this.countdown);
    this.countdown = undefined;
    this.button.disabled = false;
    this.button.textContent = this.buttonText;
  }

  /** Counts down to the moment the service accepts another send; wall-clock based. */
  startCountdown(seconds: number): void {
    const end = Date.now() + seconds * 1000;
    const tick = () => {
      const left = Math.ceil((end - Date.now()) / 1000);
      if (left <= 0) this.reset();
      else this.button.textContent = `${left}秒后重新获取`;
    };
    this.button.disabled = true;
    tick();
    this.countdown = window.setInterval(tick, 250);
  }

  /**
   * Asks the service for a code with the image code shown: the button says it is sending, the
   * image code is spent whatever the answer, and the button comes back after `onAnswer` unless
   * a countdown started.
   */
  async request(
    send: (image: { image_code: string; image_code_id: string }) => Promise<Answer>,
    onAnswer: (answer: Answer) => void,
  ): Promise<void> {
    this.button.disabled = true;
    this.button.textContent = '发送中…';
    try {
      const answer = await send({ image_code: this.imageCode.value, image_code_id: this.imageCodeId });
      this.newCaptcha();
      onAnswer(answer);
    } finally {
      if (!this.counting) this.reset();
    }
  }

  /** A code was sent: the captcha is spent, the countdown runs, and the person is told where to look. */
  sent(resendAfterSeconds: number, note: string): void {
    this.imageCode.pass();
    this.startCountdown(resendAfterSeconds);
    this.smsCode.note(note);
    this.smsCode.input.focus();
  }

  /** Shows an image-code refusal on its field; true if it was one. */
  showImageError(answer: Answer): boolean {
    const error = answer.body.error ?? '';
    if (!error.startsWith('IMAGE_CODE_') && error !== 'UUID_INVALID') return false;
    this.imageCode.fail(withWait(answer));
    this.imageCode.input.focus();
    return true;
  }
}
