/**
 * Isolated, empty databases for tests: each call makes its own (a PostgreSQL or MariaDB
 * database named meiduo_t_<random> on the shared server, or a temp SQLite file), so test
 * files running in parallel never see each other's rows; drop() removes it.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { BACKEND_URLS } from './backends.js';

export type DatabaseKind = 'sqlite' | 'postgres' | 'mysql';

export interface FreshDatabase {
  url: string;
  drop(): Promise<void>;
}

function uniqueName(): string {
  return `meiduo_t_${randomBytes(6).toString('hex')}`;
}

function withDatabase(serverUrl: string, name: string): string {
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

async function freshPostgres(): Promise<FreshDatabase> {
  const name = uniqueName();
  const admin = async (statement: string) => {
    const client = new pg.Client({ connectionString: BACKEND_URLS.postgres, connectionTimeoutMillis: 5000 });
    await client.connect();
    try {
      await client.query(statement);
    } finally {
      await client.end();
    }
  };
  // The name is ours (hex), so quoting it inline is safe; CREATE DATABASE takes no parameters.
  await admin(`create database "${name}"`);
  return {
    url: withDatabase(BACKEND_URLS.postgres, name),
    // FORCE ends connections a test left open (PostgreSQL 13+).
    drop: () => admin(`drop database if exists "${name}" with (force)`),
  };
}

async function freshMysql(): Promise<FreshDatabase> {
  const name = uniqueName();
  const admin = async (statement: string) => {
    const conn = await mysql.createConnection({ uri: BACKEND_URLS.mysql, connectTimeout: 5000 });
    try {
      await conn.query(statement);
    } finally {
      await conn.end();
    }
  };
  await admin(`create database \`${name}\` character set utf8mb4`);
  return {
    url: withDatabase(BACKEND_URLS.mysql, name),
    drop: () => admin(`drop database if exists \`${name}\``),
  };
}

function freshSqlite(): FreshDatabase {
  const dir = mkdtempSync(join(tmpdir(), 'meiduo-t-'));
  return {
    url: `sqlite:${join(dir, 'users.sqlite3')}`,
    drop: async () => rmSync(dir, { recursive: true, force: true }),
  };
}

export async function freshDatabase(kind: DatabaseKind): Promise<FreshDatabase> {
  switch (kind) {
    case 'sqlite':
      return freshSqlite();
    case 'postgres':
      return freshPostgres();
    case 'mysql':
      return freshMysql();
  }
}
