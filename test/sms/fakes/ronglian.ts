/*
 * 容联云 stand-in: POST /2013-12-26/Accounts/{sid}/SMS/TemplateSMS?sig=… checked as the
 * platform documents it (reference §1.3–§1.7), written independently of the client.
 */
import { createHash, randomBytes } from 'node:crypto';
import { type FakeRequest, type Handled, json, MAINLAND, type VendorFake, VendorState } from './server.js';

export interface RonglianDelivery {
  to: string;
  templateId: string;
  datas: string[];
  reqId?: string;
  /** The Authorization timestamp, as sent (yyyyMMddHHmmss, China time). */
  timestamp: string;
}

export interface RonglianFakeOptions {
  /** accountSid → authToken */
  accounts: Record<string, string>;
  appId: string;
  templateIds?: string[];
  /** Templates with a fixed number of variables (a notice: 0); datas of another length are refused. */
  variableCounts?: Record<string, number>;
  /** Server clock, ms since the epoch. */
  now?: () => number;
}

const MESSAGES: Record<string, string> = {
  '111101': 'Authorization为空',
  '111103': 'Authorization格式有误',
  '111106': '时间戳过期',
  '111107': '账户ID不一致',
  '111108': 'Sig为空',
  '111109': '请求地址Sig校验失败',
  '111113': '时间戳格式有误，请参考yyyyMMddHHmmss',
  '111141': '主账户不存在',
  '111181': '应用不存在',
  '160031': '参数解析失败',
  '160032': '短信模板无效',
  '160038': '短信验证码发送过频繁',
  '160040': '验证码超出同模板同号码天发送上限',
  '160042': '号码格式有误',
  '160034': '号码黑名单',
  '160052': '模板变量格式有误',
  '160054': '请求重复',
  '160055': '请求reqId超长',
  '160057': '短信模板ID要求为数字',
  '160069': '测试模板变量非数字',
  '111142': '主账户余额不足',
  '160000': '系统错误',
};

const error = (code: string): Handled => json(200, { statusCode: code, statusMsg: MESSAGES[code] ?? '错误' });

/** `yyyyMMddHHmmss` read as UTC+8; NaN when it is not a real time in that format. */
function parseChinaTime(ts: string): number {
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})$/.exec(ts);
  if (!m) return Number.NaN;
  const [y, mo, d, h, mi, s] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 59) return Number.NaN;
  return Date.UTC(y, mo - 1, d, h, mi, s) - 8 * 3600_000;
}

export type RonglianFake = VendorFake<RonglianDelivery>;

export async function startRonglianFake(options: RonglianFakeOptions): Promise<RonglianFake> {
  const now = options.now ?? Date.now;
  const templates = new Set(options.templateIds ?? ['1']);
  const state = new VendorState<RonglianDelivery>();
  const reqIds = new Set<string>();

  const refuse = (code: string): Handled => {
    state.refusals.push(code);
    return error(code);
  };

  function handle(req: FakeRequest): Handled {
    const url = new URL(req.url, 'http://fake');
    const path = /^\/2013-12-26\/Accounts\/([^/]+)\/SMS\/TemplateSMS$/.exec(url.pathname);
    if (req.method !== 'POST' || !path) return { status: 404, body: 'Not Found', contentType: 'text/plain' };
    const sid = path[1] as string;

    const auth = req.headers.authorization;
    if (!auth) return refuse('111101');
    const decoded = Buffer.from(auth, 'base64').toString('utf8');
    const parts = /^([^:]+):(.+)$/.exec(decoded);
    if (!parts) return refuse('111103');
    const [, authSid, timestamp] = parts as unknown as [string, string, string];
    if (authSid !== sid) return refuse('111107');
    const at = parseChinaTime(timestamp);
    if (Number.isNaN(at)) return refuse('111113');
    if (Math.abs(now() - at) > 24 * 3600_000) return refuse('111106');
    const sig = url.searchParams.get('sig');
    if (!sig) return refuse('111108');
    const token = options.accounts[sid];
    if (token === undefined) return refuse('111141');
    const expected = createHash('md5').update(`${sid}${token}${timestamp}`).digest('hex');
    if (sig.toLowerCase() !== expected) return refuse('111109');

    if (!req.headers['content-type']?.startsWith('application/json')) return refuse('160031');
    if (!req.headers.accept?.includes('application/json')) return refuse('160031');
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(req.body) as Record<string, unknown>;
    } catch {
      return refuse('160031');
    }
    if (body.appId !== options.appId) return refuse('111181');
    const templateId = body.templateId;
    if (typeof templateId !== 'string' || !/^\d+$/.test(templateId)) return refuse('160057');
    if (!templates.has(templateId)) return refuse('160032');
    const datas = body.datas;
    if (!Array.isArray(datas) || !datas.every((d) => typeof d === 'string')) return refuse('160052');
    const count = options.variableCounts?.[templateId];
    if (count !== undefined && datas.length !== count) return refuse('160052');
    if (templateId === '1' && !datas.every((d) => /^\d+$/.test(d))) return refuse('160069');
    const to = body.to;
    if (typeof to !== 'string' || !MAINLAND.test(to)) return refuse('160042');
    const reqId = body.reqId;
    if (reqId !== undefined) {
      if (typeof reqId !== 'string' || !/^[0-9A-Za-z]{1,32}$/.test(reqId)) return refuse('160055');
      if (reqIds.has(reqId)) return refuse('160054');
    }

    const deliver = () => {
      if (typeof reqId === 'string') reqIds.add(reqId);
      state.delivered.push({
        to,
        templateId,
        datas,
        timestamp,
        ...(typeof reqId === 'string' ? { reqId } : {}),
      });
    };
    return state.play(deliver, {
      error: (script) => refuse(script.error),
      gatewayBody: '<html>gateway error</html>',
      ok: () =>
        json(200, {
          statusCode: '000000',
          templateSMS: { dateCreated: timestamp, smsMessageSid: randomBytes(16).toString('hex') },
        }),
    });
  }

  return state.serve(handle);
}
