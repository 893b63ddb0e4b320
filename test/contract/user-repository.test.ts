/**
 * One suite for the user repository on every database it supports: SQLite (always), and
 * PostgreSQL / MariaDB when reachable. Each backend gets its own fresh database.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSqlite } from '../../src/adapters/sqlite.js';
import { openUserDatabase, type UserDatabase } from '../../src/adapters/user-repository/database.js';
import { createKyselyUserRepository } from '../../src/adapters/user-repository/kysely.js';
import { parseDatabaseUrl } from '../../src/config.js';
import { DependencyError } from '../../src/domain/errors.js';
import type { UserRepository } from '../../src/domain/ports.js';
import { migrateDown, migrateToLatest } from '../../src/migrations/index.js';
import { BACKEND_URLS, has } from '../backends.js';
import { type DatabaseKind, freshDatabase } from '../databases.js';

const OPTIONS = { poolSize: 5, statementTimeoutMs: 5000 };
/** Every migration, in order (a fresh database runs them all). */
const ALL_MIGRATIONS = ['001_tb_users', '002_sms_abuse', '003_admin_audit'];

const BACKENDS: Array<[DatabaseKind, boolean]> = [
  ['sqlite', true],
  ['postgres', await has('postgres')],
  ['mysql', await has('mysql')],
];

const name = (prefix = 'u') => `${prefix}_${randomBytes(5).toString('hex')}`;
const mobile = () => `1${randomInt(3, 10)}${String(randomInt(0, 1e9)).padStart(9, '0')}`;
/** Millisecond precision: what every driver round-trips. */
const at = (iso: string) => new Date(iso);

async function open(kind: DatabaseKind) {
  const fresh = await freshDatabase(kind);
  const database = await openUserDatabase(parseDatabaseUrl(fresh.url), OPTIONS);
  return {
    database,
    repo: createKyselyUserRepository(database),
    async dispose() {
      await database.close();
      await fresh.drop();
    },
  };
}

/** The row as stored, read without the repository (raw values per dialect). */
async function rawRow(database: UserDatabase, username: string) {
  const { rows } = await sql<
    Record<string, unknown>
  >`select * from tb_users where username = ${username}`.execute(database.db);
  return rows[0];
}

/** Django's own DDL for tb_users on each backend (reference/meiduo-contract.md §6). */
const DJANGO_DDL: Record<DatabaseKind, string[]> = {
  // Django's SQLite schema editor.
  sqlite: [
    `CREATE TABLE "tb_users" ("id" integer NOT NULL PRIMARY KEY AUTOINCREMENT, "password" varchar(128) NOT NULL,
      "last_login" datetime NULL, "is_superuser" bool NOT NULL, "username" varchar(150) NOT NULL UNIQUE,
      "first_name" varchar(30) NOT NULL, "last_name" varchar(150) NOT NULL, "email" varchar(254) NOT NULL,
      "is_staff" bool NOT NULL, "is_active" bool NOT NULL, "date_joined" datetime NOT NULL,
      "mobile" varchar(11) NOT NULL UNIQUE, "email_active" bool NOT NULL, "default_address_id" integer NULL)`,
  ],
  // Django 3.2 with DEFAULT_AUTO_FIELD = BigAutoField: bigint ids.
  postgres: [
    `CREATE TABLE "tb_users" ("id" bigserial NOT NULL PRIMARY KEY, "password" varchar(128) NOT NULL,
      "last_login" timestamp with time zone NULL, "is_superuser" boolean NOT NULL,
      "username" varchar(150) NOT NULL UNIQUE, "first_name" varchar(150) NOT NULL,
      "last_name" varchar(150) NOT NULL, "email" varchar(254) NOT NULL, "is_staff" boolean NOT NULL,
      "is_active" boolean NOT NULL, "date_joined" timestamp with time zone NOT NULL,
      "mobile" varchar(11) NOT NULL UNIQUE, "email_active" boolean NOT NULL, "default_address_id" bigint NULL)`,
    `CREATE INDEX "tb_users_username_6821ab7c_like" ON "tb_users" ("username" varchar_pattern_ops)`,
  ],
  // Django 2.2 on the course's `charset=utf8` database: int id, first_name varchar(30), and a
  // case-insensitive collation on username.
  mysql: [
    `CREATE TABLE \`tb_users\` (\`id\` integer AUTO_INCREMENT NOT NULL PRIMARY KEY,
      \`password\` varchar(128) NOT NULL, \`last_login\` datetime(6) NULL, \`is_superuser\` bool NOT NULL,
      \`username\` varchar(150) NOT NULL UNIQUE, \`first_name\` varchar(30) NOT NULL,
      \`last_name\` varchar(150) NOT NULL, \`email\` varchar(254) NOT NULL, \`is_staff\` bool NOT NULL,
      \`is_active\` bool NOT NULL, \`date_joined\` datetime(6) NOT NULL, \`mobile\` varchar(11) NOT NULL UNIQUE,
      \`email_active\` bool NOT NULL, \`default_address_id\` integer NULL)
      ENGINE=InnoDB DEFAULT CHARSET=utf8 COLLATE=utf8_general_ci`,
  ],
};

/** A row as Django writes it (booleans and datetimes in the backend's own form). */
function djangoRowInsert(kind: DatabaseKind) {
  const t = kind === 'postgres' ? 'true' : '1';
  const f = kind === 'postgres' ? 'false' : '0';
  const ts = (text: string) => (kind === 'postgres' ? `'${text}+00'` : `'${text}'`);
  return `INSERT INTO tb_users (password, last_login, is_superuser, username, first_name, last_name, email,
      is_staff, is_active, date_joined, mobile, email_active, default_address_id)
    VALUES ('pbkdf2_sha256$150000$abcdefghijkl$nDU0wDvR355BYS/PvxK+O/3Ka8vkQL0niZ9qLth/2uA=',
      ${ts('2020-09-02 10:11:12.345678')}, ${f}, 'django_user', '', '', 'dj@example.com', ${f}, ${t},
      ${ts('2020-09-01 08:00:00')}, '13912345678', ${t}, NULL)`;
}

for (const [kind, available] of BACKENDS) {
  describe.skipIf(!available)(`user repository on ${kind}`, () => {
    let db: Awaited<ReturnType<typeof open>>;
    let repo: UserRepository;

    beforeAll(async () => {
      db = await open(kind);
      repo = db.repo;
      expect(await migrateToLatest(db.database)).toEqual({ executed: ALL_MIGRATIONS, tbUsers: 'created' });
    });
    afterAll(async () => {
      await db?.dispose();
    });

    it('creates a user and finds and counts it by username, mobile and id', async () => {
      const input = {
        username: name(),
        passwordHash: 'argon2$x',
        mobile: mobile(),
        dateJoined: at('2024-05-06T07:08:09.123Z'),
      };
      const result = await repo.create(input);
      if (!result.ok) throw new Error(`expected ok, got ${JSON.stringify(result)}`);
      const expected = {
        id: result.user.id,
        username: input.username,
        password: 'argon2$x',
        mobile: input.mobile,
        email: '',
        emailActive: false,
        isActive: true,
        isStaff: false,
        isSuperuser: false,
        lastLogin: null,
        dateJoined: input.dateJoined,
      };
      expect(result.user).toEqual(expected);
      expect(typeof result.user.id).toBe('number');
      expect(await repo.findByUsername(input.username)).toEqual(expected);
      expect(await repo.findByMobile(input.mobile)).toEqual(expected);
      expect(await repo.findById(result.user.id)).toEqual(expected);
      expect(await repo.countByUsername(input.username)).toBe(1);
      expect(await repo.countByMobile(input.mobile)).toBe(1);
      expect(await repo.countByUsername(name())).toBe(0);
      expect(await repo.countByMobile(mobile())).toBe(0);
      expect(await repo.findByUsername(name())).toBeNull();
      expect(await repo.findByMobile(mobile())).toBeNull();
      expect(await repo.findById(2_000_000_000)).toBeNull();
    });

    it('treats usernames case-sensitively, as Django does', async () => {
      const lower = name('case');
      const upper = lower.toUpperCase();
      expect(
        (await repo.create({ username: lower, passwordHash: 'h', mobile: mobile(), dateJoined: new Date() }))
          .ok,
      ).toBe(true);
      expect(await repo.countByUsername(upper)).toBe(0);
      expect(await repo.findByUsername(upper)).toBeNull();
      const second = await repo.create({
        username: upper,
        passwordHash: 'h',
        mobile: mobile(),
        dateJoined: new Date(),
      });
      expect(second.ok).toBe(true);
      expect((await repo.findByUsername(upper))?.username).toBe(upper);
      expect((await repo.findByUsername(lower))?.username).toBe(lower);
    });

    it('writes every NOT NULL column itself, with the values Django would', async () => {
      const username = name();
      const joined = at('2023-01-02T03:04:05.678Z');
      await repo.create({
        username,
        passwordHash: 'pbkdf2_sha256$1$s$h',
        mobile: mobile(),
        dateJoined: joined,
      });
      const row = await rawRow(db.database, username);
      expect(row).toBeDefined();
      const truthy = (v: unknown) => v === true || v === 1;
      const falsy = (v: unknown) => v === false || v === 0;
      expect(falsy(row?.is_superuser) && falsy(row?.is_staff) && falsy(row?.email_active)).toBe(true);
      expect(truthy(row?.is_active)).toBe(true);
      expect([row?.first_name, row?.last_name, row?.email]).toEqual(['', '', '']);
      expect(row?.last_login).toBeNull();
      expect(row?.default_address_id).toBeNull();
      expect(row?.password).toBe('pbkdf2_sha256$1$s$h');
      // SQLite holds Django's naive-UTC text; the others a timestamp.
      if (kind === 'sqlite') expect(row?.date_joined).toBe('2023-01-02 03:04:05.678000');
      else expect(row?.date_joined).toEqual(joined);
    });

    it('reports a taken username, a taken mobile, and the username first when both are taken', async () => {
      const a = { username: name(), passwordHash: 'h', mobile: mobile(), dateJoined: new Date() };
      const b = { username: name(), passwordHash: 'h', mobile: mobile(), dateJoined: new Date() };
      expect((await repo.create(a)).ok).toBe(true);
      expect((await repo.create(b)).ok).toBe(true);
      expect(await repo.create({ ...a, mobile: mobile() })).toEqual({ ok: false, taken: 'username' });
      expect(await repo.create({ ...a, username: name() })).toEqual({ ok: false, taken: 'mobile' });
      expect(await repo.create({ ...a, mobile: b.mobile })).toEqual({ ok: false, taken: 'username' });
      expect(await repo.create({ ...b, username: a.username })).toEqual({ ok: false, taken: 'username' });
      expect(await repo.countByMobile(a.mobile)).toBe(1);
    });

    it('lets exactly one of 50 concurrent registrations of one username through', async () => {
      const username = name('race');
      const results = await Promise.all(
        Array.from({ length: 50 }, () =>
          repo.create({ username, passwordHash: 'h', mobile: mobile(), dateJoined: new Date() }),
        ),
      );
      expect(results.filter((r) => r.ok)).toHaveLength(1);
      expect(results.filter((r) => !r.ok)).toEqual(Array(49).fill({ ok: false, taken: 'username' }));
      expect(await repo.countByUsername(username)).toBe(1);
    });

    it('updates the password and the last login of one user only', async () => {
      const one = await repo.create({
        username: name(),
        passwordHash: 'old',
        mobile: mobile(),
        dateJoined: new Date(),
      });
      const other = await repo.create({
        username: name(),
        passwordHash: 'old',
        mobile: mobile(),
        dateJoined: new Date(),
      });
      if (!one.ok || !other.ok) throw new Error('setup failed');
      const when = at('2025-02-03T04:05:06.789Z');
      await repo.updatePassword(one.user.id, 'new');
      await repo.updateLastLogin(one.user.id, when);
      expect(await repo.findById(one.user.id)).toMatchObject({ password: 'new', lastLogin: when });
      expect(await repo.findById(other.user.id)).toMatchObject({ password: 'old', lastLogin: null });
    });

    it('binds an email unverified, verifies it only while it is still the bound one, for one user only', async () => {
      const one = await repo.create({
        username: name(),
        passwordHash: 'x',
        mobile: mobile(),
        dateJoined: new Date(),
      });
      const other = await repo.create({
        username: name(),
        passwordHash: 'x',
        mobile: mobile(),
        dateJoined: new Date(),
      });
      if (!one.ok || !other.ok) throw new Error('setup failed');
      const id = one.user.id;
      await repo.setEmail(id, 'first@example.com');
      expect(await repo.findById(id)).toMatchObject({ email: 'first@example.com', emailActive: false });
      expect(await repo.activateEmail(id, 'first@example.com')).toBe(true);
      expect(await repo.findById(id)).toMatchObject({ email: 'first@example.com', emailActive: true });
      // Verifying again is still true (MySQL reports no changed row; the answer is the same).
      expect(await repo.activateEmail(id, 'first@example.com')).toBe(true);
      await repo.setEmail(id, 'second@example.com');
      expect(await repo.findById(id)).toMatchObject({ email: 'second@example.com', emailActive: false });
      // A link made for the older address does nothing now.
      expect(await repo.activateEmail(id, 'first@example.com')).toBe(false);
      expect(await repo.findById(id)).toMatchObject({ email: 'second@example.com', emailActive: false });
      expect(await repo.findById(other.user.id)).toMatchObject({ email: '', emailActive: false });
      expect(await repo.activateEmail(2_000_000_000, 'first@example.com')).toBe(false);
    });

    it('changes a mobile, and refuses one another user has', async () => {
      const one = await repo.create({
        username: name(),
        passwordHash: 'x',
        mobile: mobile(),
        dateJoined: new Date(),
      });
      const other = await repo.create({
        username: name(),
        passwordHash: 'x',
        mobile: mobile(),
        dateJoined: new Date(),
      });
      if (!one.ok || !other.ok) throw new Error('setup failed');
      const fresh = mobile();
      expect(await repo.updateMobile(one.user.id, fresh)).toBe(true);
      expect(await repo.findByMobile(fresh)).toMatchObject({ id: one.user.id });
      expect(await repo.findByMobile(one.user.mobile)).toBeNull();
      expect(await repo.updateMobile(one.user.id, other.user.mobile)).toBe(false);
      expect(await repo.findById(one.user.id)).toMatchObject({ mobile: fresh });
      expect(await repo.findById(other.user.id)).toMatchObject({ mobile: other.user.mobile });
    });

    it('answers ping', async () => {
      await expect(repo.ping()).resolves.toBeUndefined();
    });

    it('migrates up, down and up again on a fresh database', async () => {
      const own = await open(kind);
      try {
        expect(await migrateToLatest(own.database)).toEqual({
          executed: ALL_MIGRATIONS,
          tbUsers: 'created',
        });
        expect(await migrateToLatest(own.database)).toEqual({ executed: [], tbUsers: 'created' });
        const user = { username: name(), passwordHash: 'h', mobile: mobile(), dateJoined: new Date() };
        expect((await own.repo.create(user)).ok).toBe(true);
        // The last migration first, then tb_users.
        for (const later of ALL_MIGRATIONS.slice(1).reverse()) {
          expect((await migrateDown(own.database)).executed).toEqual([later]);
        }
        expect(await migrateDown(own.database)).toEqual({ executed: ['001_tb_users'], tbUsers: 'absent' });
        // The table we created is gone: the repository now fails as an unavailable database.
        await expect(own.repo.countByUsername(user.username)).rejects.toBeInstanceOf(DependencyError);
        expect(await migrateToLatest(own.database)).toEqual({
          executed: ALL_MIGRATIONS,
          tbUsers: 'created',
        });
        expect(await own.repo.countByUsername(user.username)).toBe(0);
        expect((await own.repo.create(user)).ok).toBe(true);
      } finally {
        await own.dispose();
      }
    });

    it("adopts Django's existing tb_users: keeps its rows, reads them, never drops it", async () => {
      const own = await open(kind);
      try {
        for (const statement of DJANGO_DDL[kind]) await sql.raw(statement).execute(own.database.db);
        await sql.raw(djangoRowInsert(kind)).execute(own.database.db);

        expect(await migrateToLatest(own.database)).toEqual({
          executed: ALL_MIGRATIONS,
          tbUsers: 'adopted',
        });
        const django = await own.repo.findByUsername('django_user');
        expect(django).toEqual({
          id: expect.any(Number),
          username: 'django_user',
          password: 'pbkdf2_sha256$150000$abcdefghijkl$nDU0wDvR355BYS/PvxK+O/3Ka8vkQL0niZ9qLth/2uA=',
          mobile: '13912345678',
          email: 'dj@example.com',
          emailActive: true,
          isActive: true,
          isStaff: false,
          isSuperuser: false,
          lastLogin: at('2020-09-02T10:11:12.345Z'),
          dateJoined: at('2020-09-01T08:00:00.000Z'),
        });
        expect(await own.repo.findById(django?.id ?? 0)).toEqual(django);
        expect(
          await own.repo.create({
            username: 'django_user',
            passwordHash: 'h',
            mobile: mobile(),
            dateJoined: new Date(),
          }),
        ).toEqual({
          ok: false,
          taken: 'username',
        });
        const added = await own.repo.create({
          username: name(),
          passwordHash: 'h',
          mobile: mobile(),
          dateJoined: new Date(),
        });
        expect(added.ok && added.user.id).toBeGreaterThan(django?.id ?? 0);
        if (kind === 'mysql') {
          // Django's MySQL table compares usernames case-insensitively: its unique index refuses
          // a case variant, which the service reports as a taken username.
          expect(
            await own.repo.create({
              username: 'DJANGO_USER',
              passwordHash: 'h',
              mobile: mobile(),
              dateJoined: new Date(),
            }),
          ).toEqual({
            ok: false,
            taken: 'username',
          });
          expect(await own.repo.countByUsername('DJANGO_USER')).toBe(0);
        }

        // The last migration first, then tb_users.
        for (const later of ALL_MIGRATIONS.slice(1).reverse()) {
          expect((await migrateDown(own.database)).executed).toEqual([later]);
        }
        expect(await migrateDown(own.database)).toEqual({ executed: ['001_tb_users'], tbUsers: 'absent' });
        expect(await own.repo.findByUsername('django_user')).toEqual(django);
        expect(await migrateToLatest(own.database)).toEqual({
          executed: ALL_MIGRATIONS,
          tbUsers: 'adopted',
        });
        expect(await own.repo.countByUsername('django_user')).toBe(1);
      } finally {
        await own.dispose();
      }
    });

    it('refuses to adopt a tb_users that lacks columns the service writes, and changes nothing', async () => {
      const own = await open(kind);
      try {
        await sql
          .raw('CREATE TABLE tb_users (id integer PRIMARY KEY, username varchar(150) NOT NULL)')
          .execute(own.database.db);
        await expect(migrateToLatest(own.database)).rejects.toThrow(
          /tb_users exists but lacks the columns password, last_login/,
        );
        const { rows } = await sql<{ n: number }>`select count(*) as n from tb_users`.execute(
          own.database.db,
        );
        expect(Number(rows[0]?.n)).toBe(0);
      } finally {
        await own.dispose();
      }
    });

    if (kind === 'sqlite') {
      it('uses the shared SQLite handle and leaves it open on close', async () => {
        const fresh = await freshDatabase('sqlite');
        const handle = openSqlite(fresh.url.slice('sqlite:'.length));
        try {
          const database = await openUserDatabase(parseDatabaseUrl(fresh.url), {
            ...OPTIONS,
            sqlite: handle,
          });
          await migrateToLatest(database);
          const shared = createKyselyUserRepository(database);
          const username = name();
          await shared.create({ username, passwordHash: 'h', mobile: mobile(), dateJoined: new Date() });
          await shared.close();
          expect(handle.open).toBe(true);
          expect(
            handle.prepare('select count(*) as n from tb_users where username = ?').get(username),
          ).toEqual({ n: 1 });
        } finally {
          handle.close();
          await fresh.drop();
        }
      });
    } else {
      it('rejects promptly with DependencyError when the database is down, and recovers by itself', async () => {
        // A port nobody listens on: the server is down.
        const port = await freePort();
        const scheme = kind === 'postgres' ? 'postgres://postgres' : 'mysql://root';
        const down = await openUserDatabase(parseDatabaseUrl(`${scheme}@127.0.0.1:${port}/meiduo`), OPTIONS);
        const dead = createKyselyUserRepository(down);
        try {
          for (const call of [
            () => dead.ping(),
            () => dead.countByUsername('someone'),
            () => dead.findByMobile('13800000000'),
            () =>
              dead.create({ username: name(), passwordHash: 'h', mobile: mobile(), dateJoined: new Date() }),
          ]) {
            const started = Date.now();
            await expect(call()).rejects.toBeInstanceOf(DependencyError);
            expect(Date.now() - started).toBeLessThan(3000);
          }
        } finally {
          await dead.close();
        }

        // The server's connections die (restart, failover): the pool replaces them on its own.
        const own = await open(kind);
        try {
          await migrateToLatest(own.database);
          expect(await own.repo.countByUsername('nobody')).toBe(0);
          await killConnections(kind, own.database);
          await expect
            .poll(() => own.repo.countByUsername('nobody').catch((err: unknown) => err), { timeout: 10_000 })
            .toBe(0);
        } finally {
          await own.dispose();
        }
      });

      it('stops a statement at DATABASE_STATEMENT_TIMEOUT_MS on every pooled connection, also when reused', async () => {
        const fresh = await freshDatabase(kind);
        const database = await openUserDatabase(parseDatabaseUrl(fresh.url), {
          poolSize: 2,
          statementTimeoutMs: 300,
        });
        // A sleep far longer than the bound below, so a loaded machine (CI saw 2.3 s) cannot fail a working timeout.
        const sleep = kind === 'postgres' ? sql`select pg_sleep(30)` : sql`select sleep(30)`;
        try {
          // Warm both connections so the sleeps below run on reused ones.
          await Promise.all([sql`select 1`.execute(database.db), sql`select 1`.execute(database.db)]);
          const started = Date.now();
          const outcomes = await Promise.allSettled([sleep.execute(database.db), sleep.execute(database.db)]);
          expect(outcomes.map((o) => o.status)).toEqual(['rejected', 'rejected']);
          expect(Date.now() - started).toBeLessThan(10_000);
        } finally {
          await database.close();
          await fresh.drop();
        }
      });

      it('gives up on a connection whose host stops answering mid-use, and replaces it', async () => {
        const fresh = await freshDatabase(kind);
        const target = new URL(fresh.url);
        const proxy = await freezableProxy(target.hostname, Number(target.port));
        const viaProxy = new URL(fresh.url);
        viaProxy.port = String(proxy.port);
        const database = await openUserDatabase(parseDatabaseUrl(viaProxy.toString()), {
          poolSize: 1,
          statementTimeoutMs: 300,
        });
        const repo = createKyselyUserRepository(database);
        try {
          await repo.ping();
          // The pooled connection now leads nowhere, for good (like a host that vanished).
          proxy.freeze();
          const started = Date.now();
          await expect(repo.ping()).rejects.toBeInstanceOf(DependencyError);
          expect(Date.now() - started).toBeLessThan(4000);
          // New connections get through again; the frozen one never does, so only a pool that
          // threw it away answers.
          proxy.thaw();
          await expect
            .poll(
              () =>
                repo.ping().then(
                  () => 'up',
                  () => 'down',
                ),
              { timeout: 10_000, interval: 200 },
            )
            .toBe('up');
        } finally {
          await repo.close();
          await proxy.close();
          await fresh.drop();
        }
      });

      it('rejects within a couple of seconds when the host accepts connections but never answers', async () => {
        const silent = await silentServer();
        const scheme = kind === 'postgres' ? 'postgres://postgres' : 'mysql://root';
        const hung = await openUserDatabase(
          parseDatabaseUrl(`${scheme}@127.0.0.1:${silent.port}/meiduo`),
          OPTIONS,
        );
        const repo = createKyselyUserRepository(hung);
        try {
          const started = Date.now();
          await expect(repo.countByMobile('13800000000')).rejects.toBeInstanceOf(DependencyError);
          expect(Date.now() - started).toBeLessThan(5000);
        } finally {
          await repo.close();
          await silent.close();
        }
      });
    }
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** A TCP server that accepts and then says nothing, like a hung database host. */
async function silentServer(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : 0,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/**
 * A TCP proxy to the database whose connections can be frozen: after freeze() every existing
 * connection silently drops what passes through it (forever), and new ones hang until thaw().
 */
async function freezableProxy(host: string, port: number) {
  let frozen = false;
  const links = new Set<{ client: Socket; upstream?: Socket; dead: boolean }>();
  const server: Server = createServer((client) => {
    const link: { client: Socket; upstream?: Socket; dead: boolean } = { client, dead: frozen };
    links.add(link);
    client.on('error', () => {});
    const end = () => {
      client.destroy();
      link.upstream?.destroy();
      links.delete(link);
    };
    client.on('close', end);
    if (link.dead) return;
    const upstream = connect(port, host);
    link.upstream = upstream;
    upstream.on('error', () => {});
    upstream.on('close', end);
    client.on('data', (chunk) => {
      if (!link.dead) upstream.write(chunk);
    });
    upstream.on('data', (chunk) => {
      if (!link.dead) client.write(chunk);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : 0,
    freeze() {
      frozen = true;
      for (const link of links) link.dead = true;
    },
    thaw() {
      frozen = false;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const link of links) {
          link.client.destroy();
          link.upstream?.destroy();
        }
        server.close(() => resolve());
      }),
  };
}

/** Ends, from the server side, every connection to this test's own database. */
async function killConnections(kind: DatabaseKind, database: UserDatabase): Promise<void> {
  const admin = await openUserDatabase(
    parseDatabaseUrl(kind === 'postgres' ? BACKEND_URLS.postgres : BACKEND_URLS.mysql),
    {
      poolSize: 1,
      statementTimeoutMs: 5000,
    },
  );
  try {
    const { rows } = await (kind === 'postgres'
      ? sql<{ db: string }>`select current_database() as db`
      : sql<{ db: string }>`select database() as db`
    ).execute(database.db);
    const dbName = rows[0]?.db ?? '';
    expect(dbName).toMatch(/^meiduo_t_/);
    if (kind === 'postgres') {
      await sql`select pg_terminate_backend(pid) from pg_stat_activity where datname = ${dbName}`.execute(
        admin.db,
      );
    } else {
      const { rows: ids } = await sql<{
        id: number;
      }>`select id from information_schema.processlist where db = ${dbName}`.execute(admin.db);
      expect(ids.length).toBeGreaterThan(0);
      for (const { id } of ids) await sql.raw(`kill connection ${Number(id)}`).execute(admin.db);
    }
  } finally {
    await admin.close();
  }
}
