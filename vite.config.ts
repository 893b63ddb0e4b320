import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const web = (path: string) => fileURLToPath(new URL(`./web/${path}`, import.meta.url));

/**
 * The pages (register, login, home, user centre, find password, email verified) as plain TypeScript modules. Built into web/dist, which the
 * service serves on its own origin (src/plugins/static-pages.ts): hashed names under /assets/
 * are cached for a year, so every asset name must change with its content.
 */
export default defineConfig({
  root: web(''),
  publicDir: web('public'),
  base: '/',
  logLevel: 'warn',
  build: {
    outDir: web('dist'),
    emptyOutDir: true,
    target: 'es2022',
    // Every browser that runs es2022 modules has modulepreload: no polyfill in the bundle.
    modulePreload: { polyfill: false },
    rolldownOptions: {
      input: {
        index: web('index.html'),
        register: web('register.html'),
        login: web('login.html'),
        user_center_info: web('user_center_info.html'),
        find_password: web('find_password.html'),
        success_verify_email: web('success_verify_email.html'),
      },
      output: {
        // The one stylesheet is shared by the pages; name it for what it is, not the chunk it rode in.
        assetFileNames: (asset) =>
          asset.names.some((n) => n.endsWith('.css'))
            ? 'assets/pages-[hash][extname]'
            : 'assets/[name]-[hash][extname]',
      },
    },
  },
});
