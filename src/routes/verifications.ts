import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import Type from 'typebox';
import { clientKey } from '../domain/client-ip.js';
import type { Verification } from '../domain/verification.js';
import { ok } from '../plugins/envelope.js';

const MobileParams = Type.Object({ mobile: Type.String() });

const SmsQuery = Type.Object({
  image_code: Type.Optional(Type.String({ maxLength: 64 })),
  image_code_id: Type.Optional(Type.String({ maxLength: 128 })),
});

/** The Django app "verifications": image codes and SMS codes. */
export async function verificationRoutes(app: FastifyInstance, opts: { verification: Verification }) {
  const { verification } = opts;

  app.get<{ Params: { uuid: string } }>('/image_codes/:uuid/', async (request, reply) => {
    const image = await verification.imageCode(request.params.uuid, clientKey(request.ip));
    return reply.header('Cache-Control', 'no-store').type(image.contentType).send(image.body);
  });

  // The request's types come from the schema (TypeBox type provider), not written twice.
  app
    .withTypeProvider<TypeBoxTypeProvider>()
    .get(
      '/sms_codes/:mobile/',
      { schema: { params: MobileParams, querystring: SmsQuery } },
      async (request) => {
        const { resendAfterSeconds } = await verification.sendSmsCode({
          mobile: request.params.mobile,
          imageCode: request.query.image_code,
          imageCodeId: request.query.image_code_id,
          client: clientKey(request.ip),
          ip: request.ip,
        });
        return ok('发送短信成功', { resend_after: resendAfterSeconds });
      },
    );
}
