/*
 * Twilio stand-in: POST /2010-04-01/Accounts/{sid}/Messages.json with Basic auth and a form
 * body, checked and answered as the Messages resource documents it (reference §4.2–§4.3).
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { type FakeRequest, type Handled, json, type VendorFake, VendorState } from './server.js';

export interface TwilioDelivery {
  to: string;
  from: string;
  body: string;
}

export interface TwilioFakeOptions {
  /** AccountSid → AuthToken */
  accounts: Record<string, string>;
  /** Numbers (E.164) and Messaging Service SIDs the account owns. */
  senders: string[];
}

const STATUS: Record<number, number> = { 20003: 401, 20404: 404, 20429: 429 };
const MESSAGES: Record<number, string> = {
  20003: 'Authenticate',
  20429: 'Too Many Requests',
  21211: "The 'To' number is not a valid phone number.",
  21602: 'Message body is required.',
  21603: "A 'From' phone number is required.",
  21604: "A 'To' phone number is required.",
  21606:
    "The 'From' phone number provided is not a valid message-capable Twilio phone number for this destination/account.",
  21608: 'The number is unverified. Trial accounts can only send messages to verified numbers.',
  21610: 'Attempt to send to unsubscribed recipient',
  21614: "'To' number is not a valid mobile number",
};

const equal = (a: string, b: string) =>
  a.length === b.length && timingSafeEqual(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));

export type TwilioFake = VendorFake<TwilioDelivery>;

export async function startTwilioFake(options: TwilioFakeOptions): Promise<TwilioFake> {
  const state = new VendorState<TwilioDelivery>();

  const refuse = (code: number): Handled => {
    state.refusals.push(String(code));
    const status = STATUS[code] ?? 400;
    return json(status, {
      code,
      message: MESSAGES[code] ?? 'Error',
      more_info: `https://www.twilio.com/docs/errors/${code}`,
      status,
    });
  };

  function handle(req: FakeRequest): Handled {
    const path = /^\/2010-04-01\/Accounts\/([^/]+)\/Messages\.json$/.exec(req.url);
    if (req.method !== 'POST' || !path) return refuse(20404);
    const sid = path[1] as string;
    const basic = /^Basic ([A-Za-z0-9+/=]+)$/.exec(String(req.headers.authorization ?? ''));
    if (!basic) return refuse(20003);
    const [user, ...rest] = Buffer.from(basic[1] as string, 'base64')
      .toString('utf8')
      .split(':');
    const token = options.accounts[sid];
    if (user !== sid || token === undefined || !equal(rest.join(':'), token)) return refuse(20003);
    if (!req.headers['content-type']?.startsWith('application/x-www-form-urlencoded')) return refuse(21604);

    const form = new URLSearchParams(req.body);
    const to = form.get('To');
    if (!to) return refuse(21604);
    if (!/^\+[1-9]\d{6,14}$/.test(to)) return refuse(21211);
    if (to.startsWith('+86') && !/^\+861[3-9]\d{9}$/.test(to)) return refuse(21614);
    const from = form.get('MessagingServiceSid') ?? form.get('From');
    if (!from) return refuse(21603);
    if (!options.senders.includes(from)) return refuse(21606);
    const text = form.get('Body');
    if (!text) return refuse(21602);

    const deliver = () => {
      state.delivered.push({ to, from, body: text });
    };
    const ok = (): Handled => {
      const messageSid = `SM${randomBytes(16).toString('hex')}`;
      return json(201, {
        sid: messageSid,
        account_sid: sid,
        to,
        from,
        body: text,
        status: from.startsWith('MG') ? 'accepted' : 'queued',
        num_segments: '1',
        error_code: null,
        error_message: null,
        uri: `/2010-04-01/Accounts/${sid}/Messages/${messageSid}.json`,
      });
    };
    return state.play(deliver, {
      error: (script) => refuse(Number(script.error)),
      gatewayBody: '<html>upstream</html>',
      ok,
    });
  }

  return state.serve(handle);
}
