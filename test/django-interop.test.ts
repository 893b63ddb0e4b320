/**
 * The password hashes against real Django (Debian's python3-django + python3-argon2, seen by
 * /usr/bin/python3): what this service writes, Django accepts, and the other way round; and a
 * login-time replacement of an old Django hash still verifies in Django; and Django's database
 * layer reading (and writing) the columns the user centre changes.
 */
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { createPasswordHasher, type HasherOptions } from '../src/domain/password.js';
import { DEBIAN_PYTHON, has } from './backends.js';
import { buildTestApp, randomMobile, registration, smsCode } from './helper.js';

const available = await has('django');

// Low costs keep the suite fast; both sides are configured alike.
const ARGON2 = { m: 1024, t: 1, p: 1 };
const PBKDF2_ITERATIONS = 1000;
const options: HasherOptions = {
  PASSWORD_HASHER: 'argon2',
  ARGON2_MEMORY_KIB: ARGON2.m,
  ARGON2_TIME_COST: ARGON2.t,
  ARGON2_PARALLELISM: ARGON2.p,
  PBKDF2_ITERATIONS,
  HASH_CONCURRENCY: 2,
};

type Op =
  | { op: 'check'; password: string; encoded: string }
  | { op: 'make'; password: string; algorithm: string; salt?: string }
  | { op: 'must_update'; encoded: string };

interface DjangoSetup {
  /** Django's preferred hasher (PASSWORD_HASHERS[0]): 'argon2' or 'pbkdf2_sha256'. */
  preferred: 'argon2' | 'pbkdf2_sha256';
  /** argon2 hash length Django uses; unset = the installed argon2-cffi's default. */
  argon2HashLen?: number;
  /** PBKDF2 iterations of Django's hasher. */
  pbkdf2Iterations?: number;
}

/**
 * Runs Django's own hashers (django.contrib.auth.hashers) on a batch of operations. The
 * hashers are Django's classes with their cost attributes set, as a settings module would.
 */
const SCRIPT = `
import json, sys
req = json.load(sys.stdin)
cfg = req['setup']
from django.conf import settings
from django.contrib.auth import hashers as h

class Argon2(h.Argon2PasswordHasher):
    time_cost = cfg['t']
    memory_cost = cfg['m']
    parallelism = cfg['p']
    def params(self):
        p = super().params()
        if cfg.get('hash_len'):
            p.hash_len = cfg['hash_len']
        return p

class PBKDF2(h.PBKDF2PasswordHasher):
    iterations = cfg['iterations']

names = ['__main__.Argon2', '__main__.PBKDF2', 'django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher']
if cfg['preferred'] == 'pbkdf2_sha256':
    names[0], names[1] = names[1], names[0]
settings.configure(PASSWORD_HASHERS=names)

out = []
for op in req['ops']:
    if op['op'] == 'check':
        out.append(h.check_password(op['password'], op['encoded']))
    elif op['op'] == 'make':
        out.append(h.make_password(op['password'], op.get('salt'), hasher=op['algorithm']))
    else:
        preferred = h.get_hasher('default')
        hasher = h.identify_hasher(op['encoded'])
        out.append(hasher.algorithm != preferred.algorithm or hasher.must_update(op['encoded']))
json.dump(out, sys.stdout)
`;

async function django(setup: DjangoSetup, ops: Op[]): Promise<unknown[]> {
  const input = JSON.stringify({
    setup: {
      preferred: setup.preferred,
      hash_len: setup.argon2HashLen ?? null,
      iterations: setup.pbkdf2Iterations ?? PBKDF2_ITERATIONS,
      ...ARGON2,
    },
    ops,
  });
  return new Promise((resolve, reject) => {
    const child = spawn(DEBIAN_PYTHON, ['-c', SCRIPT], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) reject(new Error(`python exited ${code}: ${stderr}`));
      else resolve(JSON.parse(stdout) as unknown[]);
    });
    child.stdin.end(input);
  });
}

describe.skipIf(!available)('password hashes against real Django', () => {
  const argon2Hasher = createPasswordHasher(options);
  const pbkdf2Hasher = createPasswordHasher({ ...options, PASSWORD_HASHER: 'pbkdf2_sha256' });

  it('Django accepts the hashes this service writes, and refuses wrong passwords', async () => {
    const argon2 = await argon2Hasher.hash('Meiduo2020pw');
    const pbkdf2 = await pbkdf2Hasher.hash('Meiduo2020pw');
    const results = await django({ preferred: 'argon2', argon2HashLen: 32 }, [
      { op: 'check', password: 'Meiduo2020pw', encoded: argon2 },
      { op: 'check', password: 'Meiduo2020pW', encoded: argon2 },
      { op: 'check', password: 'Meiduo2020pw', encoded: pbkdf2 },
      { op: 'check', password: 'meiduo2020pw', encoded: pbkdf2 },
      // Configured alike (argon2-cffi ≥ 21.2's 32-byte hashes), Django sees nothing to update.
      { op: 'must_update', encoded: argon2 },
    ]);
    expect(results).toEqual([true, false, true, false, false]);
    const [pbkdf2Update] = await django({ preferred: 'pbkdf2_sha256' }, [
      { op: 'must_update', encoded: pbkdf2 },
    ]);
    expect(pbkdf2Update).toBe(false);
  });

  it("this service accepts Django's hashes, and refuses wrong passwords", async () => {
    const [pbkdf2, argon2Cffi16, sha1] = (await django({ preferred: 'argon2' }, [
      { op: 'make', password: '密码Pass1234', algorithm: 'pbkdf2_sha256' },
      { op: 'make', password: '密码Pass1234', algorithm: 'argon2' },
      { op: 'make', password: '密码Pass1234', algorithm: 'pbkdf2_sha1' },
    ])) as string[];
    const [argon2Len32Made] = (await django({ preferred: 'argon2', argon2HashLen: 32 }, [
      { op: 'make', password: '密码Pass1234', algorithm: 'argon2' },
    ])) as string[];
    expect(pbkdf2).toMatch(/^pbkdf2_sha256\$1000\$[A-Za-z0-9]{22}\$/);
    expect(argon2Cffi16).toMatch(/^argon2\$argon2id\$v=19\$m=1024,t=1,p=1\$/);
    expect(sha1).toMatch(/^pbkdf2_sha1\$/);

    expect(await pbkdf2Hasher.verify('密码Pass1234', pbkdf2 ?? '')).toEqual({ ok: true, mustUpdate: false });
    expect((await pbkdf2Hasher.verify('密码Pass1235', pbkdf2 ?? '')).ok).toBe(false);
    expect(await argon2Hasher.verify('密码Pass1234', argon2Len32Made ?? '')).toEqual({
      ok: true,
      mustUpdate: false,
    });
    expect((await argon2Hasher.verify('密码pass1234', argon2Len32Made ?? '')).ok).toBe(false);
    // Debian 12's argon2-cffi 21.1 makes 16-byte argon2 hashes: accepted, and due for our 32.
    expect(await argon2Hasher.verify('密码Pass1234', argon2Cffi16 ?? '')).toEqual({
      ok: true,
      mustUpdate: true,
    });
    expect(await pbkdf2Hasher.verify('密码Pass1234', sha1 ?? '')).toEqual({ ok: true, mustUpdate: true });
  });

  it('a login-time replacement of a Django 2.2 hash still verifies in Django', async () => {
    // Django 2.2 (the 2020 Meiduo): 150000 iterations, 12-character salt.
    const [old] = (await django({ preferred: 'pbkdf2_sha256', pbkdf2Iterations: 150_000 }, [
      { op: 'make', password: 'Meiduo2020pw', algorithm: 'pbkdf2_sha256', salt: 'abcdefghijkl' },
    ])) as string[];
    expect(old).toMatch(/^pbkdf2_sha256\$150000\$abcdefghijkl\$/);

    for (const hasher of [argon2Hasher, pbkdf2Hasher]) {
      // What the login route does: verify, and on mustUpdate write a hash of the configured kind.
      const verdict = await hasher.verify('Meiduo2020pw', old ?? '');
      expect(verdict).toEqual({ ok: true, mustUpdate: true });
      const replacement = await hasher.hash('Meiduo2020pw');
      expect(await hasher.verify('Meiduo2020pw', replacement)).toEqual({ ok: true, mustUpdate: false });
      const [accepted, refused] = await django({ preferred: 'argon2', argon2HashLen: 32 }, [
        { op: 'check', password: 'Meiduo2020pw', encoded: replacement },
        { op: 'check', password: 'Meiduo2020px', encoded: replacement },
      ]);
      expect([accepted, refused]).toEqual([true, false]);
    }
  });
});

/**
 * Django's own database layer on the SQLite file the service writes (the embedded default):
 * it reads the user centre's changes from tb_users' own columns — email, email_active, the
 * password — and a change Django makes there is what the service then reports.
 */
const ROW_SCRIPT = `
import json, sys
req = json.load(sys.stdin)
from django.conf import settings
settings.configure(
    DATABASES={'default': {'ENGINE': 'django.db.backends.sqlite3', 'NAME': req['db']}},
    PASSWORD_HASHERS=['django.contrib.auth.hashers.Argon2PasswordHasher'],
)
import django
django.setup()
from django.db import connection
from django.contrib.auth.hashers import check_password
with connection.cursor() as c:
    c.execute('select email, email_active, password, mobile from tb_users where username = %s', [req['username']])
    email, active, password, mobile = c.fetchone()
    out = {'email': email, 'email_active': bool(active), 'mobile': mobile,
           'new_ok': check_password(req['new'], password), 'old_ok': check_password(req['old'], password)}
    c.execute('update tb_users set email_active = %s where username = %s', [False, req['username']])
json.dump(out, sys.stdout)
`;

describe.skipIf(!available)('tb_users after the user centre, read and written by Django', () => {
  it('Django sees the bound, verified email and the changed password in its own columns', async () => {
    const t = await buildTestApp();
    try {
      const c = t.client();
      await c.fetchCsrf();
      const mobile = randomMobile();
      const body = registration(mobile, await smsCode(t, c, mobile));
      expect((await c.post('/register/', body)).statusCode).toBe(200);
      const email = 'django-check@example.com';
      const mail = t.nextMail(email);
      expect((await c.put('/emails/', { email })).statusCode).toBe(200);
      const token = /token=([A-Za-z0-9_-]+)/.exec((await mail).text)?.[1];
      expect((await c.put(`/emails/verification/?token=${token}`)).statusCode).toBe(200);
      const changed = await c.put('/password/', {
        old_password: body.password,
        new_password: 'Dj4ngo-sees-it',
        new_password2: 'Dj4ngo-sees-it',
      });
      expect(changed.statusCode).toBe(200);

      const dbPath = t.config.database.kind === 'sqlite' ? t.config.database.path : '';
      const seen = await new Promise<Record<string, unknown>>((resolve, reject) => {
        const child = spawn(DEBIAN_PYTHON, ['-c', ROW_SCRIPT], { stdio: ['pipe', 'pipe', 'pipe'] });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (chunk: Buffer) => {
          stdout += chunk.toString();
        });
        child.stderr.on('data', (chunk: Buffer) => {
          stderr += chunk.toString();
        });
        child.on('close', (code) =>
          code === 0 ? resolve(JSON.parse(stdout)) : reject(new Error(`python exited ${code}: ${stderr}`)),
        );
        child.stdin.end(
          JSON.stringify({ db: dbPath, username: body.username, new: 'Dj4ngo-sees-it', old: body.password }),
        );
      });
      expect(seen).toEqual({ email, email_active: true, mobile, new_ok: true, old_ok: false });

      // Django cleared email_active: the service reports it so.
      const again = t.client();
      await again.fetchCsrf();
      expect(
        (await again.post('/login/', { username: body.username, password: 'Dj4ngo-sees-it' })).statusCode,
      ).toBe(200);
      expect((await again.get('/info/')).json().info_data).toMatchObject({ email, email_active: false });
    } finally {
      await t.close();
    }
  });
});
