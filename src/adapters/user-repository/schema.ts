import type { ColumnType, Generated } from 'kysely';

/*
 * Django's `tb_users` (AbstractUser + Meiduo's mobile, email_active, default_address_id;
 * API.md §3). The select types are what the three drivers hand back before the repository
 * normalises them: booleans are 0/1 on SQLite and MySQL, dates are Django's text on SQLite,
 * ids are strings when PostgreSQL's bigint is used.
 */

/** true/false on PostgreSQL and MySQL, 0/1 on SQLite (which cannot bind booleans). */
type Bool = ColumnType<boolean | number, boolean | number, boolean | number>;
/** Date on PostgreSQL and MySQL; Django's `YYYY-MM-DD HH:MM:SS[.ffffff]` UTC text on SQLite. */
type DateTime = ColumnType<Date | string, Date | string, Date | string>;

export interface TbUsersTable {
  id: Generated<number | string | bigint>;
  password: string;
  last_login: ColumnType<Date | string | null, Date | string | null, Date | string | null>;
  is_superuser: Bool;
  username: string;
  first_name: string;
  last_name: string;
  email: string;
  is_staff: Bool;
  is_active: Bool;
  date_joined: DateTime;
  mobile: string;
  email_active: Bool;
  default_address_id: number | null;
}

export interface DB {
  tb_users: TbUsersTable;
}
