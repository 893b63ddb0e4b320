import type { FastifyInstance } from 'fastify';
import { withDeadline } from '../deadline.js';
import type { Deps } from '../deps.js';
import { ok } from '../plugins/envelope.js';

const CHECK_TIMEOUT_MS = 2000;

async function check(probe: () => Promise<void>): Promise<boolean> {
  try {
    await withDeadline(probe(), CHECK_TIMEOUT_MS, 'readiness check');
    return true;
  } catch {
    return false;
  }
}

/** /healthz: the process answers. /readyz: every dependency answers (API.md §2). */
export async function healthRoutes(app: FastifyInstance, opts: { deps: Deps; testMode: boolean }) {
  const { deps, testMode } = opts;
  app.get('/healthz', async () => ok('OK'));
  app.get('/readyz', async (_request, reply) => {
    const [database, schema, codeStore, sessionStore, queue] = await Promise.all([
      check(() => deps.users.ping()),
      // the table and the latest migration: a database nobody migrated is not ready either
      check(async () => {
        if ((await deps.schemaGaps()).length > 0) throw new Error('schema incomplete');
      }),
      check(() => deps.codeStore.ping()),
      check(() => deps.sessionStore.ping()),
      check(() => deps.queue.ping()),
    ]);
    const checks = { database, schema, code_store: codeStore, session_store: sessionStore, queue };
    const ready = database && schema && codeStore && sessionStore && queue;
    if (!ready) {
      return reply.sendError('SERVICE_UNAVAILABLE', { checks, test_mode: testMode });
    }
    return ok('OK', { checks, test_mode: testMode });
  });
}
