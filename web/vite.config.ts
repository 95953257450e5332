/// <reference types="vitest/config" />
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { resolve } from 'node:path';
import { defineConfig, type Plugin } from 'vite';
import react from '@vitejs/plugin-react';
import { nsfwModel } from './plugins/nsfw-model.ts';

// The Go package internal/web embeds this directory with //go:embed all:dist,
// which fails to compile when the directory is missing or empty. The repository
// commits dist/.keep for that reason; emptyOutDir deletes it on every build, so
// write it back once the bundle is on disk.
const outDir = resolve(import.meta.dirname, '../internal/web/dist');

function keepPlaceholder(): Plugin {
  return {
    name: 'stranger-keep-placeholder',
    apply: 'build',
    closeBundle() {
      mkdirSync(outDir, { recursive: true });
      writeFileSync(
        resolve(outDir, '.keep'),
        'Placeholder so that go:embed compiles before the web client is built.\n',
      );
    },
  };
}

// The node serves assets/ gzipped; compressing the guard's megabytes (worker,
// model, WASM) here rather than in the node spares every server start and
// first request that work. internal/web serves NAME.gz in place of NAME, and
// keeps only those that save at least a tenth.
function gzipAssets(): Plugin {
  return {
    name: 'stranger-gzip-assets',
    apply: 'build',
    writeBundle(options, bundle) {
      const dir = options.dir ?? outDir;
      for (const name of Object.keys(bundle)) {
        if (!name.startsWith('assets/')) continue;
        const body = readFileSync(resolve(dir, name));
        if (body.length < 1024) continue;
        const gz = gzipSync(body, { level: 9 });
        if (gz.length < body.length - body.length / 10) writeFileSync(resolve(dir, name + '.gz'), gz);
      }
    },
  };
}

// The node the dev server forwards to; override with STRANGER_NODE (and its
// admin listener, for the console's /admin/api, with STRANGER_ADMIN).
const node = process.env.STRANGER_NODE ?? 'http://127.0.0.1:8080';

export default defineConfig({
  plugins: [react(), keepPlaceholder(), nsfwModel(), gzipAssets()],
  // The nudity guard's worker (src/guard/worker.ts) is an ES module worker.
  worker: { format: 'es' },
  build: {
    outDir,
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: false,
    // Two pages: the app, and the operator console at /admin/ (a separate
    // entry, so the app's pages never load the console's code).
    rollupOptions: {
      input: {
        main: resolve(import.meta.dirname, 'index.html'),
        admin: resolve(import.meta.dirname, 'admin/index.html'),
      },
    },
  },
  server: {
    host: '127.0.0.1',
    port: 5173,
    proxy: {
      '/ws': {
        target: node,
        ws: true,
        changeOrigin: true,
        // The node refuses a WebSocket whose Origin is not its own host (protocol:
        // Transport); the page's origin here is the dev server's, so present the
        // node's own. Only the dev server does this; production is same-origin.
        configure: (proxy) => {
          proxy.on('proxyReqWs', (proxyReq) => proxyReq.setHeader('origin', new URL(node).origin));
        },
      },
      '/api': { target: node, changeOrigin: true },
      '/admin/api': { target: process.env.STRANGER_ADMIN ?? 'http://127.0.0.1:6060', changeOrigin: true },
    },
  },
  test: {
    environment: 'jsdom',
    include: ['src/**/*.test.{ts,tsx}'],
    restoreMocks: true,
    setupFiles: ['src/test/setup.ts'],
  },
});
