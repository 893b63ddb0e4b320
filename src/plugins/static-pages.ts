import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';

/** Where `vite build` puts the pages: web/dist beside src/ and dist/. */
export const PAGES_DIR = fileURLToPath(new URL('../../web/dist/', import.meta.url));

const PAGE_CSP = [
  "default-src 'self'",
  "img-src 'self' data:",
  "style-src 'self'",
  "script-src 'self'",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

/**
 * The pages, same origin as the API. Fingerprinted assets are immutable for a year; HTML is
 * revalidated on every load so that a deploy is seen at once.
 */
export const staticPages = fp(
  async (app: FastifyInstance, opts: { dir?: string | undefined } = {}) => {
    const root = opts.dir ?? PAGES_DIR;
    if (!existsSync(root)) {
      app.log.warn({ root }, 'pages are not built (npm run build): only the API is served');
      return;
    }
    await app.register(fastifyStatic, {
      root,
      index: ['index.html'],
      wildcard: false,
      cacheControl: false,
      etag: true,
      lastModified: true,
      setHeaders(res, path) {
        if (path.endsWith('.html')) {
          res.setHeader('Cache-Control', 'no-cache');
          res.setHeader('Content-Security-Policy', PAGE_CSP);
        } else if (path.includes('/assets/')) {
          res.setHeader('Cache-Control', 'public, max-age=31536000, immutable');
        } else {
          res.setHeader('Cache-Control', 'public, max-age=3600');
        }
      },
    });
  },
  { name: 'static-pages' },
);
