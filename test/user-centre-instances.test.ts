/**
 * Two web instances on one Redis and one PostgreSQL (as behind a load balancer), each with its
 * own Fastify, connections and in-process state: what one instance does to a user's sessions
 * holds on the other, and a verification mail asked for on one is sent by the other's worker.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openUserDatabase } from '../src/adapters/user-repository/database.js';
import { buildServer } from '../src/build.js';
import { loadConfig } from '../src/config.js';
import { createDeps, type Deps } from '../src/deps.js';
import { createLogger } from '../src/logger.js';
import { startSmsWorker } from '../src/startup.js';
import { BACKEND_URLS, has } from './backends.js';
import { type FreshDatabase, freshDatabase } from './databases.js';
import { Client, randomIp, randomMobile, recordingEmail, recordingProvider, registration } from './helper.js';
import { logSink } from './log-sink.js';

const available = (await has('redis')) && (await has('postgres'));

interface Instance {
  app: FastifyInstance;
  deps: Deps;
}

describe.skipIf(!available)('user centre across two instances (Redis + PostgreSQL)', () => {
  let database: FreshDatabase;
  let dataDir: string;
  let a: Instance;
  let b: Instance;
  const sms = recordingProvider();
  const mail = recordingEmail();

  beforeAll(async () => {
    database = await freshDatabase('postgres');
    dataDir = mkdtempSync(join(tmpdir(), 'meiduo-instances-'));
    const config = loadConfig({
      DATA_DIR: dataDir,
      DATABASE_URL: database.url,
      REDIS_URL: `${BACKEND_URLS.redis}/5`,
      ARGON2_MEMORY_KIB: '1024',
      ARGON2_TIME_COST: '1',
      JOB_BACKOFF_MS: '10',
      SMS_PER_IP_PER_HOUR: '0',
    });
    const queuePrefix = `meiduo-users-test:${randomBytes(4).toString('hex')}`;
    const make = async (name: string, worker: boolean, migrate: boolean): Promise<Instance> => {
      const log = createLogger(config, logSink().stream).child({ instance: name });
      const deps = await createDeps(config, log, {
        migrate,
        sms: sms.provider,
        email: mail.provider,
        queuePrefix,
      });
      // Only B consumes: a job A accepts is sent by B's worker through the shared queue.
      if (worker) startSmsWorker(deps, config, log);
      const app = await buildServer(config, deps, log);
      await app.ready();
      return { app, deps };
    };
    a = await make('a', false, true);
    b = await make('b', true, false);
    // Fresh databases start ids at 1; the shared Redis keys sessions by user id.
    const admin = await openUserDatabase(config.database, { poolSize: 1, statementTimeoutMs: 5000 });
    await sql`select setval(pg_get_serial_sequence('tb_users', 'id'), ${randomInt(1e6, 1e9)})`.execute(
      admin.db,
    );
    await admin.close();
  });
  afterAll(async () => {
    for (const i of [a, b]) {
      await i?.app.close();
      await i?.deps.close();
    }
    await database?.drop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('a password change on one instance ends the sessions the other one serves', async () => {
    const ip = randomIp();
    const onA = new Client(a.app, ip, {});
    await onA.fetchCsrf();
    const mobile = randomMobile();
    const code = sms.next(mobile);
    const uuid = `t-${randomBytes(6).toString('hex')}`;
    await onA.get(`/image_codes/${uuid}/`);
    const answer = await a.deps.codeStore.get(`img_${uuid}`);
    const sent = await onA.get(`/sms_codes/${mobile}/?image_code=${answer}&image_code_id=${uuid}`);
    expect(sent.statusCode, sent.body).toBe(200);
    const body = registration(mobile, (await code).code);
    expect((await onA.post('/register/', body)).statusCode).toBe(200);

    // A second browser logs in through B; both instances see both sessions.
    const onB = new Client(b.app, randomIp(), {});
    await onB.fetchCsrf();
    expect((await onB.post('/login/', { username: body.username, password: body.password })).statusCode).toBe(
      200,
    );
    expect((await onA.get('/sessions/')).json().sessions).toHaveLength(2);
    expect((await onB.get('/sessions/')).json().sessions).toHaveLength(2);

    // The verification mail asked for on A is made and sent by B's worker.
    const email = `x${randomBytes(4).toString('hex')}@example.com`;
    const arrived = mail.next(email);
    expect((await onA.request('PUT', '/emails/', { body: { email } })).statusCode).toBe(200);
    const token = /token=([A-Za-z0-9_-]+)/.exec((await arrived).text)?.[1];
    expect((await onB.request('PUT', `/emails/verification/?token=${token}`)).statusCode).toBe(200);
    expect((await onA.get('/info/')).json().info_data).toMatchObject({ email, email_active: true });

    const changed = await onA.request('PUT', '/password/', {
      body: { old_password: body.password, new_password: 'N3w-passw0rd', new_password2: 'N3w-passw0rd' },
    });
    expect(changed.statusCode, changed.body).toBe(200);
    // B served that browser a moment ago; now its session is gone there too.
    const after = await onB.get('/info/');
    expect(after.statusCode).toBe(401);
    expect((await onB.get('/sessions/')).statusCode).toBe(401);
    expect((await onA.get('/info/')).statusCode).toBe(401);
    const again = new Client(b.app, randomIp(), {});
    await again.fetchCsrf();
    expect(
      (await again.post('/login/', { username: body.username, password: 'N3w-passw0rd' })).statusCode,
    ).toBe(200);
  });
});
