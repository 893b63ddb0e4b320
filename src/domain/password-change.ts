import type { Accounts } from './accounts.js';
import { isObject } from './body.js';
import { ApiError } from './errors.js';
import type { PasswordHasher, SessionStore, User, UserRepository } from './ports.js';
import { PASSWORD_RULE } from './registration.js';

const FIELDS = ['old_password', 'new_password', 'new_password2'] as const;

export interface PasswordChangeDeps {
  accounts: Accounts;
  users: UserRepository;
  hasher: PasswordHasher;
  sessionStore: SessionStore;
}

/** PUT /password/ (API.md §2 "User centre"): the checks in their order, then every session ends. */
export function createPasswordChange(deps: PasswordChangeDeps) {
  const { accounts, users, hasher, sessionStore } = deps;
  return {
    async change(user: User, body: unknown, client: string): Promise<void> {
      if (!isObject(body)) throw new ApiError('BAD_JSON');
      for (const field of FIELDS) {
        const value = body[field];
        if (value === undefined || value === null || value === '') throw new ApiError('MISSING_PARAMS');
        if (typeof value !== 'string') throw new ApiError('BAD_REQUEST');
      }
      const {
        old_password: oldPassword,
        new_password: password,
        new_password2: password2,
      } = body as Record<(typeof FIELDS)[number], string>;
      // The cheap rules first: a malformed new password costs no hash and no login failure.
      if (!PASSWORD_RULE.test(password)) throw new ApiError('PASSWORD_INVALID');
      if (password2 !== password) throw new ApiError('PASSWORD_MISMATCH');
      if (!(await accounts.reauthenticate(user, oldPassword, client)))
        throw new ApiError('OLD_PASSWORD_WRONG');
      await users.updatePassword(user.id, await hasher.hash(password));
      // Every session, this one included, on every instance: they all live in the store.
      await sessionStore.deleteAllForUser(user.id);
    },
  };
}

export type PasswordChange = ReturnType<typeof createPasswordChange>;
