/*
 * Aliyun dysmsapi stand-in: POST / (form body) or GET /?…, signed with the RPC V1 HMAC-SHA1
 * scheme or V3 ACS3-HMAC-SHA256, checked as the gateway documents it (reference §2.3–§2.6):
 * required parameters, ±15 min timestamp window, nonce reuse, signature recomputed here with
 * an implementation independent of the client's.
 */
import { createHash, createHmac, randomBytes, randomUUID } from 'node:crypto';
import { type FakeRequest, type Handled, json, MAINLAND, type VendorFake, VendorState } from './server.js';

export interface AliyunDelivery {
  phoneNumbers: string;
  templateCode: string;
  templateParam: Record<string, string>;
  signatureVersion: 'v1' | 'v3';
}

export interface AliyunFakeOptions {
  /** AccessKeyId → AccessKeySecret */
  keys: Record<string, string>;
  signName: string;
  templateCode: string;
  /** Variables of the template, all required in TemplateParam. */
  templateVars: string[];
  /** More approved templates: code → its variables (none: TemplateParam may be left out). */
  templates?: Record<string, string[]>;
  now?: () => number;
}

/** Gateway codes answer with their own HTTP status; business (isv/isp) codes with 200. */
const GATEWAY_STATUS: Record<string, number> = {
  MissingParameter: 400,
  InvalidParameter: 400,
  'InvalidTimeStamp.Format': 400,
  'InvalidTimeStamp.Expired': 400,
  SignatureNonceUsed: 400,
  SignatureDoesNotMatch: 400,
  'InvalidAccessKeyId.NotFound': 404,
  Throttling: 400,
  'Throttling.User': 400,
  InternalError: 500,
  ServiceUnavailable: 503,
};

const MESSAGES: Record<string, string> = {
  'isv.BUSINESS_LIMIT_CONTROL': '触发分钟级流控Permits:1',
  'isv.MOBILE_NUMBER_ILLEGAL': '非法手机号',
  'isv.BLACK_KEY_CONTROL_LIMIT': '黑名单管控',
  'isv.AMOUNT_NOT_ENOUGH': '账户余额不足',
  'isv.INVALID_JSON_PARAM': 'JSON参数不合法，只接受字符串值',
  'isv.TEMPLATE_MISSING_PARAMETERS': '模板缺少变量',
  'isv.SMS_SIGNATURE_ILLEGAL': '短信签名不合法',
  'isv.SMS_TEMPLATE_ILLEGAL': '短信模板不合法',
  'isp.SYSTEM_ERROR': '系统错误',
  SignatureDoesNotMatch: 'Specified signature is not matched with our calculation.',
  SignatureNonceUsed: 'Specified signature nonce was used already.',
  'InvalidTimeStamp.Expired': 'Specified time stamp or date value is expired.',
};

/** RFC 3986: bytes outside A-Z a-z 0-9 - _ . ~ become %XX (upper case). */
function rfc3986(value: string): string {
  let out = '';
  for (const byte of Buffer.from(value, 'utf8')) {
    const c = String.fromCharCode(byte);
    out += /[A-Za-z0-9\-_.~]/.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** Form/query decoding as a server does it (`+` is a space). */
function decodePairs(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const pair of text.split('&')) {
    if (!pair) continue;
    const eq = pair.indexOf('=');
    const k = eq < 0 ? pair : pair.slice(0, eq);
    const v = eq < 0 ? '' : pair.slice(eq + 1);
    out.set(decodeURIComponent(k.replace(/\+/g, ' ')), decodeURIComponent(v.replace(/\+/g, ' ')));
  }
  return out;
}

function canonical(params: Map<string, string>): string {
  return [...params.keys()]
    .sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
    .map((k) => `${rfc3986(k)}=${rfc3986(params.get(k) as string)}`)
    .join('&');
}

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;

export type AliyunFake = VendorFake<AliyunDelivery>;

export async function startAliyunFake(options: AliyunFakeOptions): Promise<AliyunFake> {
  const now = options.now ?? Date.now;
  const state = new VendorState<AliyunDelivery>();
  const nonces = new Set<string>();

  const answer = (code: string): Handled =>
    json(GATEWAY_STATUS[code] ?? 200, {
      Code: code,
      Message: MESSAGES[code] ?? code,
      RequestId: randomUUID().toUpperCase(),
    });
  const refuse = (code: string): Handled => {
    state.refusals.push(code);
    return answer(code);
  };
  const timeOk = (ts: string): 'format' | 'expired' | 'ok' => {
    if (!ISO.test(ts) || Number.isNaN(Date.parse(ts))) return 'format';
    return Math.abs(now() - Date.parse(ts)) > 15 * 60_000 ? 'expired' : 'ok';
  };

  /** V1: everything, Signature included, is in the query (GET) or the form body (POST). */
  function checkV1(req: FakeRequest, query: string): { params: Map<string, string> } | Handled {
    let text = query;
    if (req.method === 'POST') {
      if (!req.headers['content-type']?.startsWith('application/x-www-form-urlencoded')) {
        return refuse('InvalidParameter');
      }
      text = req.body;
    }
    const params = decodePairs(text);
    for (const name of [
      'AccessKeyId',
      'Action',
      'Format',
      'SignatureMethod',
      'SignatureNonce',
      'SignatureVersion',
      'Timestamp',
      'Version',
      'Signature',
    ]) {
      if (!params.get(name)) return refuse('MissingParameter');
    }
    if (
      params.get('Action') !== 'SendSms' ||
      params.get('Version') !== '2017-05-25' ||
      params.get('SignatureMethod') !== 'HMAC-SHA1' ||
      params.get('SignatureVersion') !== '1.0' ||
      params.get('Format') !== 'JSON' // this stand-in speaks JSON only
    ) {
      return refuse('InvalidParameter');
    }
    const t = timeOk(params.get('Timestamp') as string);
    if (t === 'format') return refuse('InvalidTimeStamp.Format');
    if (t === 'expired') return refuse('InvalidTimeStamp.Expired');
    const secret = options.keys[params.get('AccessKeyId') as string];
    if (secret === undefined) return refuse('InvalidAccessKeyId.NotFound');
    const given = params.get('Signature') as string;
    const unsigned = new Map(params);
    unsigned.delete('Signature');
    const stringToSign = `${req.method}&${rfc3986('/')}&${rfc3986(canonical(unsigned))}`;
    const expected = createHmac('sha1', `${secret}&`).update(stringToSign).digest('base64');
    if (given !== expected) return refuse('SignatureDoesNotMatch');
    const nonce = params.get('SignatureNonce') as string;
    if (nonces.has(nonce)) return refuse('SignatureNonceUsed');
    nonces.add(nonce);
    return { params };
  }

  /** V3: common parameters in x-acs-* headers, business ones in the query and/or form body. */
  function checkV3(req: FakeRequest, query: string): { params: Map<string, string> } | Handled {
    const h = req.headers;
    const m = /^ACS3-HMAC-SHA256 Credential=([^,]+),SignedHeaders=([^,]+),Signature=([0-9a-f]{64})$/.exec(
      String(h.authorization),
    );
    if (!m) return refuse('InvalidParameter');
    const [, keyId, signedHeaders, given] = m as unknown as [string, string, string, string];
    for (const name of [
      'x-acs-action',
      'x-acs-version',
      'x-acs-date',
      'x-acs-signature-nonce',
      'x-acs-content-sha256',
    ]) {
      if (!h[name]) return refuse('MissingParameter');
    }
    if (h['x-acs-action'] !== 'SendSms' || h['x-acs-version'] !== '2017-05-25')
      return refuse('InvalidParameter');
    const t = timeOk(String(h['x-acs-date']));
    if (t === 'format') return refuse('InvalidTimeStamp.Format');
    if (t === 'expired') return refuse('InvalidTimeStamp.Expired');
    const bodyHash = createHash('sha256').update(req.body).digest('hex');
    if (h['x-acs-content-sha256'] !== bodyHash) return refuse('SignatureDoesNotMatch');
    const secret = options.keys[keyId];
    if (secret === undefined) return refuse('InvalidAccessKeyId.NotFound');
    const names = signedHeaders.split(';');
    const mustSign = Object.keys(h)
      .filter((n) => n.startsWith('x-acs-'))
      .concat('host');
    if (h['content-type']) mustSign.push('content-type');
    if (!mustSign.every((n) => names.includes(n))) return refuse('SignatureDoesNotMatch');
    const canonicalHeaders = names.map((n) => `${n}:${String(h[n] ?? '').trim()}\n`).join('');
    const queryParams = decodePairs(query);
    const canonicalRequest = `${req.method}\n/\n${canonical(queryParams)}\n${canonicalHeaders}\n${signedHeaders}\n${bodyHash}`;
    const stringToSign = `ACS3-HMAC-SHA256\n${createHash('sha256').update(canonicalRequest).digest('hex')}`;
    const expected = createHmac('sha256', secret).update(stringToSign).digest('hex');
    if (given !== expected) return refuse('SignatureDoesNotMatch');
    const nonce = String(h['x-acs-signature-nonce']);
    if (nonces.has(nonce)) return refuse('SignatureNonceUsed');
    nonces.add(nonce);
    const params = new Map(queryParams);
    if (h['content-type']?.startsWith('application/x-www-form-urlencoded')) {
      for (const [k, v] of decodePairs(req.body)) params.set(k, v);
    }
    return { params };
  }

  function handle(req: FakeRequest): Handled {
    const q = req.url.indexOf('?');
    const path = q < 0 ? req.url : req.url.slice(0, q);
    const query = q < 0 ? '' : req.url.slice(q + 1);
    if (path !== '/' || (req.method !== 'POST' && req.method !== 'GET')) {
      return json(404, { Code: 'InvalidAction.NotFound', Message: 'not found' });
    }
    const v3 = String(req.headers.authorization ?? '').startsWith('ACS3-HMAC-SHA256');
    const checked = v3 ? checkV3(req, query) : checkV1(req, query);
    if (typeof checked === 'string' || !('params' in checked)) return checked;
    const { params } = checked;

    const phones = params.get('PhoneNumbers') ?? '';
    const bare = phones.replace(/^(\+86|0086|86)/, '');
    if (!MAINLAND.test(bare)) return refuse('isv.MOBILE_NUMBER_ILLEGAL');
    if (params.get('SignName') !== options.signName) return refuse('isv.SMS_SIGNATURE_ILLEGAL');
    const templateCode = params.get('TemplateCode') ?? '';
    const vars =
      templateCode === options.templateCode ? options.templateVars : options.templates?.[templateCode];
    if (vars === undefined) return refuse('isv.SMS_TEMPLATE_ILLEGAL');
    let templateParam: Record<string, unknown>;
    try {
      // Optional: a template without variables needs none.
      const raw = params.get('TemplateParam');
      templateParam =
        raw === undefined && vars.length === 0 ? {} : (JSON.parse(raw ?? '') as Record<string, unknown>);
    } catch {
      return refuse('isv.INVALID_JSON_PARAM');
    }
    if (!Object.values(templateParam).every((v) => typeof v === 'string'))
      return refuse('isv.INVALID_JSON_PARAM');
    if (!vars.every((v) => v in templateParam)) return refuse('isv.TEMPLATE_MISSING_PARAMETERS');

    const deliver = () => {
      state.delivered.push({
        phoneNumbers: phones,
        templateCode,
        templateParam: templateParam as Record<string, string>,
        signatureVersion: v3 ? 'v3' : 'v1',
      });
    };
    return state.play(deliver, {
      error: (script) => refuse(script.error),
      gatewayBody: '<html>bad gateway</html>',
      ok: () =>
        json(200, {
          Code: 'OK',
          Message: 'OK',
          BizId: `${randomBytes(8).readBigUInt64BE() % 10n ** 18n}^0`,
          RequestId: randomUUID().toUpperCase(),
        }),
    });
  }

  return state.serve(handle);
}
