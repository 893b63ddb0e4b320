/*
 * Every worked example of shared/reference/sms-providers.md, asserted string for string:
 * Aliyun V1 (vectors A, B), Aliyun V3 (C), Tencent TC3 (D, E), the derived Ronglian example
 * (§1.6) and Twilio's Basic header example (§4.2).
 */
import { describe, expect, it } from 'vitest';
import { createRonglianProvider } from '../../src/adapters/sms-provider/ronglian.js';
import {
  aliyunPercentEncode,
  basicAuthorization,
  chinaTimestamp,
  signAliyunV1,
  signAliyunV3,
  signRonglian,
  signTc3,
} from '../../src/adapters/sms-provider/signing.js';

describe('Ronglian sig and Authorization (§1.6, derived, not official)', () => {
  const accountSid = '8a216da8000000000000000000000001';
  const authToken = '0123456789abcdef0123456789abcdef';

  it('signs the example', () => {
    expect(signRonglian(accountSid, authToken, '20240101120000')).toEqual({
      sig: '8B30444D4D2FA787D091F4B0F86F1463',
      authorization: 'OGEyMTZkYTgwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDE6MjAyNDAxMDExMjAwMDA=',
    });
  });

  it('formats the timestamp in China time (UTC+8), not in UTC or the host zone', () => {
    expect(chinaTimestamp(new Date('2024-01-01T04:00:00Z'))).toBe('20240101120000');
    // Crossing midnight and a year boundary in China while it is still the old year in UTC.
    expect(chinaTimestamp(new Date('2023-12-31T16:00:05Z'))).toBe('20240101000005');
  });

  it('sends the example URL, headers and body', async () => {
    const seen: { url: string; init: RequestInit }[] = [];
    const recording: typeof fetch = async (url, init) => {
      seen.push({ url: String(url), init: init ?? {} });
      return new Response('{"statusCode":"000000","templateSMS":{"smsMessageSid":"x","dateCreated":"1"}}');
    };
    const provider = createRonglianProvider(
      {
        accountSid,
        authToken,
        appId: '8a216da8000000000000000000000002',
        templateId: '1',
        baseUrl: 'https://app.cloopen.com:8883',
      },
      { fetch: recording, now: () => new Date('2024-01-01T04:00:00Z'), timeoutMs: 1000 },
    );
    const outcome = await provider.send({
      mobile: '13800000000',
      code: '123456',
      ttlMinutes: 5,
      purpose: 'register',
      idempotencyKey: 'job42',
    });
    expect(outcome).toEqual({ kind: 'ok', provider: 'ronglian', messageId: 'x' });
    expect(seen).toHaveLength(1);
    const call = seen[0] as { url: string; init: RequestInit };
    expect(call.url).toBe(
      'https://app.cloopen.com:8883/2013-12-26/Accounts/8a216da8000000000000000000000001/SMS/TemplateSMS?sig=8B30444D4D2FA787D091F4B0F86F1463',
    );
    expect((call.init.headers as Record<string, string>).Authorization).toBe(
      'OGEyMTZkYTgwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDE6MjAyNDAxMDExMjAwMDA=',
    );
    // The documented body plus our reqId (the job's idempotency key).
    expect(JSON.parse(String(call.init.body))).toEqual({
      ...JSON.parse(
        '{"to":"13800000000","appId":"8a216da8000000000000000000000002","templateId":"1","datas":["123456","5"]}',
      ),
      reqId: 'job42',
    });
  });
});

describe('Aliyun V1 HMAC-SHA1 (§2.3)', () => {
  const vectorA = {
    AccessKeyId: 'testId',
    SignatureMethod: 'HMAC-SHA1',
    SignatureNonce: '45e25e9b-0a6f-4070-8c85-2956eda1b466',
    SignatureVersion: '1.0',
    Timestamp: '2017-07-12T02:42:19Z',
    Format: 'XML',
    Action: 'SendSms',
    Version: '2017-05-25',
    RegionId: 'cn-hangzhou',
    PhoneNumbers: '15300000001',
    SignName: '阿里云短信测试专用',
    TemplateParam: '{"customer":"test"}',
    TemplateCode: 'SMS_71390007',
    OutId: '123',
  };

  it('vector A: the SMS SendSms example', () => {
    const signed = signAliyunV1('GET', vectorA, 'testSecret');
    expect(signed.canonicalQuery).toBe(
      'AccessKeyId=testId&Action=SendSms&Format=XML&OutId=123&PhoneNumbers=15300000001&RegionId=cn-hangzhou&SignName=%E9%98%BF%E9%87%8C%E4%BA%91%E7%9F%AD%E4%BF%A1%E6%B5%8B%E8%AF%95%E4%B8%93%E7%94%A8&SignatureMethod=HMAC-SHA1&SignatureNonce=45e25e9b-0a6f-4070-8c85-2956eda1b466&SignatureVersion=1.0&TemplateCode=SMS_71390007&TemplateParam=%7B%22customer%22%3A%22test%22%7D&Timestamp=2017-07-12T02%3A42%3A19Z&Version=2017-05-25',
    );
    expect(signed.stringToSign).toBe(
      'GET&%2F&AccessKeyId%3DtestId%26Action%3DSendSms%26Format%3DXML%26OutId%3D123%26PhoneNumbers%3D15300000001%26RegionId%3Dcn-hangzhou%26SignName%3D%25E9%2598%25BF%25E9%2587%258C%25E4%25BA%2591%25E7%259F%25AD%25E4%25BF%25A1%25E6%25B5%258B%25E8%25AF%2595%25E4%25B8%2593%25E7%2594%25A8%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D45e25e9b-0a6f-4070-8c85-2956eda1b466%26SignatureVersion%3D1.0%26TemplateCode%3DSMS_71390007%26TemplateParam%3D%257B%2522customer%2522%253A%2522test%2522%257D%26Timestamp%3D2017-07-12T02%253A42%253A19Z%26Version%3D2017-05-25',
    );
    expect(signed.signature).toBe('zJDF+Lrzhj/ThnlvIToysFRq6t4=');
    expect(
      `http://dysmsapi.aliyuncs.com/?Signature=${aliyunPercentEncode(signed.signature)}&${signed.canonicalQuery}`,
    ).toBe(
      'http://dysmsapi.aliyuncs.com/?Signature=zJDF%2BLrzhj%2FThnlvIToysFRq6t4%3D&AccessKeyId=testId&Action=SendSms&Format=XML&OutId=123&PhoneNumbers=15300000001&RegionId=cn-hangzhou&SignName=%E9%98%BF%E9%87%8C%E4%BA%91%E7%9F%AD%E4%BF%A1%E6%B5%8B%E8%AF%95%E4%B8%93%E7%94%A8&SignatureMethod=HMAC-SHA1&SignatureNonce=45e25e9b-0a6f-4070-8c85-2956eda1b466&SignatureVersion=1.0&TemplateCode=SMS_71390007&TemplateParam=%7B%22customer%22%3A%22test%22%7D&Timestamp=2017-07-12T02%3A42%3A19Z&Version=2017-05-25',
    );
  });

  it('vector A signed with POST (the method our client uses)', () => {
    expect(signAliyunV1('POST', vectorA, 'testSecret').signature).toBe('Xvhv7fPXrPkLVSnlt0jIr08o8NQ=');
  });

  it('vector A: the credentials are case-sensitive', () => {
    const lower = signAliyunV1('GET', { ...vectorA, AccessKeyId: 'testid' }, 'testsecret');
    expect(lower.signature).toBe('LxugEBqtL8lacmz/6I2QOoMzw+Y=');
  });

  it('vector B: the generic RPC DescribeRegions example', () => {
    const signed = signAliyunV1(
      'GET',
      {
        AccessKeyId: 'testid',
        Action: 'DescribeRegions',
        Format: 'XML',
        SignatureMethod: 'HMAC-SHA1',
        SignatureNonce: '3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf',
        SignatureVersion: '1.0',
        Timestamp: '2016-02-23T12:46:24Z',
        Version: '2014-05-26',
      },
      'testsecret',
    );
    expect(signed.stringToSign).toBe(
      'GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions%26Format%3DXML%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf%26SignatureVersion%3D1.0%26Timestamp%3D2016-02-23T12%253A46%253A24Z%26Version%3D2014-05-26',
    );
    expect(signed.signature).toBe('OLeaidS1JvxuMvnyHOwuJ+uX5qY=');
  });

  it("percent-encodes as RFC 3986 (!'()* and space too), unlike encodeURIComponent", () => {
    expect(aliyunPercentEncode("a b!'()*~-_.")).toBe('a%20b%21%27%28%29%2A~-_.');
  });
});

describe('Aliyun V3 ACS3-HMAC-SHA256 (§2.4)', () => {
  it('vector C: the fixed-parameter example', () => {
    const signed = signAliyunV3({
      method: 'POST',
      path: '/',
      query: { ImageId: 'win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd', RegionId: 'cn-shanghai' },
      headers: {
        host: 'ecs.cn-shanghai.aliyuncs.com',
        'x-acs-action': 'RunInstances',
        'x-acs-version': '2014-05-26',
        'x-acs-date': '2023-10-26T10:22:32Z',
        'x-acs-signature-nonce': '3156853299f313e23d1673dc12e1703d',
      },
      body: '',
      accessKeyId: 'YourAccessKeyId',
      accessKeySecret: 'YourAccessKeySecret',
    });
    expect(signed.canonicalRequest).toBe(
      [
        'POST',
        '/',
        'ImageId=win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd&RegionId=cn-shanghai',
        'host:ecs.cn-shanghai.aliyuncs.com',
        'x-acs-action:RunInstances',
        'x-acs-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
        'x-acs-date:2023-10-26T10:22:32Z',
        'x-acs-signature-nonce:3156853299f313e23d1673dc12e1703d',
        'x-acs-version:2014-05-26',
        '',
        'host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version',
        'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
      ].join('\n'),
    );
    expect(signed.stringToSign).toBe(
      'ACS3-HMAC-SHA256\n7ea06492da5221eba5297e897ce16e55f964061054b7695beedaac1145b1e259',
    );
    expect(signed.signature).toBe('06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0');
    expect(signed.authorization).toBe(
      'ACS3-HMAC-SHA256 Credential=YourAccessKeyId,SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,Signature=06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0',
    );
  });
});

describe('Tencent TC3-HMAC-SHA256 (§3.3)', () => {
  it('vector D: POST DescribeInstances, scope date in UTC', () => {
    const signed = signTc3({
      method: 'POST',
      canonicalQuery: '',
      headers: { 'Content-Type': 'application/json; charset=utf-8', Host: 'cvm.tencentcloudapi.com' },
      body: '{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}',
      service: 'cvm',
      timestamp: 1551113065,
      secretId: 'AKID**********************0123456789EXAMPLE',
      secretKey: 'Gu5t9xGARNpq86cd98joQYCN3EXAMPLE',
    });
    expect(signed.canonicalRequest).toBe(
      [
        'POST',
        '/',
        '',
        'content-type:application/json; charset=utf-8',
        'host:cvm.tencentcloudapi.com',
        '',
        'content-type;host',
        '35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064',
      ].join('\n'),
    );
    // 1551113065 is 2019-02-26 00:44:25 in UTC+8 but the scope takes the UTC date.
    expect(signed.stringToSign).toBe(
      'TC3-HMAC-SHA256\n1551113065\n2019-02-25/cvm/tc3_request\n5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031',
    );
    expect(signed.signature).toBe('72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168');
    expect(signed.authorization).toBe(
      'TC3-HMAC-SHA256 Credential=AKID**********************0123456789EXAMPLE/2019-02-25/cvm/tc3_request, SignedHeaders=content-type;host, Signature=72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168',
    );
  });

  it('vector E: GET DescribeInstances (with the real host, not the doc typo)', () => {
    const signed = signTc3({
      method: 'GET',
      canonicalQuery: 'Limit=10&Offset=0',
      headers: { 'content-type': 'application/x-www-form-urlencoded', host: 'cvm.tencentcloudapi.com' },
      body: '',
      service: 'cvm',
      timestamp: 1539084154,
      secretId: 'AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE',
      secretKey: 'Gu5t9xGARNpq86cd98joQYCN3EXAMPLE',
    });
    expect(signed.stringToSign).toBe(
      'TC3-HMAC-SHA256\n1539084154\n2018-10-09/cvm/tc3_request\n91c9c192c14460df6c1ffc69e34e6c5e90708de2a6d282cccf957dbf1aa7f3a7',
    );
    expect(signed.signature).toBe('5da7a33f6993f0614b047e5df4582db9e9bf4672ba50567dba16c6ccf174c474');
    expect(signed.authorization).toBe(
      'TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2018-10-09/cvm/tc3_request, SignedHeaders=content-type;host, Signature=5da7a33f6993f0614b047e5df4582db9e9bf4672ba50567dba16c6ccf174c474',
    );
  });
});

describe('Twilio Basic auth (§4.2)', () => {
  it('builds the documented header', () => {
    expect(basicAuthorization('AC00000000000000000000000000000000', 'your_auth_token')).toBe(
      'Basic QUMwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDp5b3VyX2F1dGhfdG9rZW4=',
    );
  });
});
