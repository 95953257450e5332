/// <reference types="vitest/config" />
import { mkdirSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { defineConfig, type Plugin } from 'vite';
import react from '@vitejs/plugin-react';

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

// The node the dev server forwards to; override with STRANGER_NODE.
const node = process.env.STRANGER_NODE ?? 'http://127.0.0.1:8080';

export default defineConfig({
  plugins: [react(), keepPlaceholder()],
  build: {
    outDir,
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: false,
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
    },
  },
  test: {
    environment: 'jsdom',
    include: ['src/**/*.test.{ts,tsx}'],
    restoreMocks: true,
    setupFiles: ['src/test/setup.ts'],
  },
});
