import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';

/**
 * 404 and 405 as JSON. Fastify answers an unknown method with its 404 handler, so the routes
 * are remembered as patterns to tell "no such path" from "no such method on this path".
 */
export const notFound = fp(
  async (app: FastifyInstance) => {
    const routes: Array<{ pattern: RegExp; methods: Set<string> }> = [];
    app.addHook('onRoute', (route) => {
      const source = route.url
        .split('/')
        .map((part) => (part.startsWith(':') ? '[^/]+' : part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
        .join('/')
        .replace(/\/$/, '');
      const pattern = new RegExp(`^${source}/?$`);
      const methods = Array.isArray(route.method) ? route.method : [route.method];
      const known = routes.find((r) => r.pattern.source === pattern.source);
      if (known) for (const m of methods) known.methods.add(m);
      else routes.push({ pattern, methods: new Set(methods) });
    });
    app.setNotFoundHandler((request, reply) => {
      const path = request.url.split('?')[0] ?? '/';
      const allowed = new Set<string>();
      for (const route of routes) if (route.pattern.test(path)) for (const m of route.methods) allowed.add(m);
      if (allowed.size > 0) {
        return reply.header('Allow', [...allowed].join(', ')).sendError('METHOD_NOT_ALLOWED');
      }
      return reply.sendError('NOT_FOUND');
    });
  },
  { name: 'not-found', dependencies: ['envelope'] },
);
