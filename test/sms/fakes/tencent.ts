/*
 * Tencent Cloud SMS stand-in: POST / with TC3-HMAC-SHA256, SendSms 2021-01-11, checked as the
 * API gateway documents it (reference §3.2–§3.5): common headers, ±5 min timestamp, UTC scope
 * date, signature recomputed independently of the client, body fields. Every answer is HTTP
 * 200; failures are in Response.Error or per number in SendStatusSet.
 */
import { createHash, createHmac, randomInt, randomUUID } from 'node:crypto';
import { type FakeRequest, type Handled, json, MAINLAND, type VendorFake, VendorState } from './server.js';

export interface TencentDelivery {
  phoneNumber: string;
  templateId: string;
  templateParamSet: string[];
  signName: string;
}

export interface TencentFakeOptions {
  /** SecretId → SecretKey */
  keys: Record<string, string>;
  sdkAppId: string;
  templateId: string;
  /** More approved templates: id → its number of parameters (the main one's is not checked). */
  templates?: Record<string, number>;
  signName: string;
  now?: () => number;
}

const hmac = (key: string | Buffer, msg: string) => createHmac('sha256', key).update(msg).digest();
const hex = (s: string) => createHash('sha256').update(s).digest('hex');

export type TencentFake = VendorFake<TencentDelivery>;

export async function startTencentFake(options: TencentFakeOptions): Promise<TencentFake> {
  const now = options.now ?? Date.now;
  const state = new VendorState<TencentDelivery>();

  const requestError = (code: string): Handled => {
    state.refusals.push(code);
    return json(200, { Response: { Error: { Code: code, Message: code }, RequestId: randomUUID() } });
  };
  const statusSet = (entries: Array<{ code: string; phone: string; serial?: string }>): Handled =>
    json(200, {
      Response: {
        SendStatusSet: entries.map((e) => ({
          SerialNo: e.serial ?? '',
          PhoneNumber: e.phone,
          Fee: e.code === 'Ok' ? 1 : 0,
          SessionContext: '',
          Code: e.code,
          Message: e.code === 'Ok' ? 'send success' : e.code,
          IsoCode: 'CN',
        })),
        RequestId: randomUUID(),
      },
    });

  function handle(req: FakeRequest): Handled {
    const h = req.headers;
    if (req.method !== 'POST' || req.url !== '/') return requestError('InvalidParameter');
    if (!/^application\/json(; ?charset=utf-8)?$/i.test(String(h['content-type']))) {
      return requestError('InvalidParameter');
    }
    if (h['x-tc-action'] !== 'SendSms') return requestError('InvalidAction');
    if (h['x-tc-version'] !== '2021-01-11') return requestError('NoSuchVersion');
    if (!h['x-tc-region']) return requestError('MissingParameter');
    const tsText = String(h['x-tc-timestamp'] ?? '');
    if (!/^\d{10}$/.test(tsText)) return requestError('InvalidParameter');
    const timestamp = Number(tsText);
    if (Math.abs(now() / 1000 - timestamp) > 300) return requestError('AuthFailure.SignatureExpire');

    const m =
      /^TC3-HMAC-SHA256 Credential=([^/]+)\/(\d{4}-\d{2}-\d{2})\/([a-z]+)\/tc3_request, SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$/.exec(
        String(h.authorization ?? ''),
      );
    if (!m) return requestError('AuthFailure.InvalidAuthorization');
    const [, secretId, date, service, signedHeaders, given] = m as unknown as [
      string,
      string,
      string,
      string,
      string,
      string,
    ];
    const secretKey = options.keys[secretId];
    if (secretKey === undefined) return requestError('AuthFailure.SecretIdNotFound');
    const names = signedHeaders.split(';');
    if (!names.includes('content-type') || !names.includes('host'))
      return requestError('AuthFailure.SignatureFailure');
    const utcDate = new Date(timestamp * 1000).toISOString().slice(0, 10);
    if (service !== 'sms' || date !== utcDate) return requestError('AuthFailure.SignatureFailure');
    const canonicalHeaders = [...names]
      .sort()
      .map((n) => `${n}:${String(h[n] ?? '').trim()}\n`)
      .join('');
    const canonicalRequest = ['POST', '/', '', canonicalHeaders, signedHeaders, hex(req.body)].join('\n');
    const scope = `${date}/${service}/tc3_request`;
    const stringToSign = ['TC3-HMAC-SHA256', tsText, scope, hex(canonicalRequest)].join('\n');
    const key = hmac(hmac(hmac(`TC3${secretKey}`, date), service), 'tc3_request');
    const expected = createHmac('sha256', key).update(stringToSign).digest('hex');
    if (given !== expected) return requestError('AuthFailure.SignatureFailure');

    let body: Record<string, unknown>;
    try {
      body = JSON.parse(req.body) as Record<string, unknown>;
    } catch {
      return requestError('FailedOperation.JsonParseFail');
    }
    if (body.SmsSdkAppId !== options.sdkAppId) return requestError('InvalidParameterValue.SdkAppIdNotExist');
    if (body.SignName !== options.signName)
      return requestError('FailedOperation.SignatureIncorrectOrUnapproved');
    const templateId = String(body.TemplateId);
    const count = options.templates?.[templateId];
    if (templateId !== options.templateId && count === undefined)
      return requestError('FailedOperation.TemplateIncorrectOrUnapproved');
    const params = body.TemplateParamSet;
    if (!Array.isArray(params) || !params.every((p) => typeof p === 'string' && /^\d{0,6}$/.test(p))) {
      return requestError('InvalidParameterValue.TemplateParameterFormatError');
    }
    if (count !== undefined && params.length !== count)
      return requestError('FailedOperation.TemplateParamSetNotMatchApprovedTemplate');
    const phones = body.PhoneNumberSet;
    if (!Array.isArray(phones) || phones.length === 0) return requestError('MissingParameter');
    // Domestic numbers: +86…, 0086…, 86… or bare 11 digits.
    const bad = phones.find((p) => typeof p !== 'string' || !MAINLAND.test(p.replace(/^(\+86|0086|86)/, '')));
    if (bad !== undefined) return requestError('InvalidParameterValue.IncorrectPhoneNumber');

    const deliver = () => {
      for (const phone of phones as string[]) {
        state.delivered.push({
          phoneNumber: phone,
          templateId,
          templateParamSet: params as string[],
          signName: options.signName,
        });
      }
    };
    return state.play(deliver, {
      // A scripted error is a request error with `in: 'error'`, else a per-number status.
      error: (script) => {
        if (script.in === 'error') return requestError(script.error);
        state.refusals.push(script.error);
        return statusSet((phones as string[]).map((phone) => ({ code: script.error, phone })));
      },
      gatewayBody: '<html>gateway</html>',
      ok: () =>
        statusSet(
          (phones as string[]).map((phone) => ({
            code: 'Ok',
            phone,
            serial: `5000:${randomInt(1e9)}${randomInt(1e9)}`,
          })),
        ),
    });
  }

  return state.serve(handle);
}
