// The app's build: one origin, no inline script (the CSP forbids it), and
// output that depends only on the sources, so that the committed bundle can be
// compared with a fresh build (web/web_test.go).
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

// @qchat/client from its sources (the workspace's lib/src): the app builds
// without building the library first, and one TypeScript pass covers both.
const lib = (p: string) => fileURLToPath(new URL(`../lib/src/${p}`, import.meta.url));

export default defineConfig({
  base: '/',
  resolve: {
    alias: [
      { find: /^@qchat\/client$/, replacement: lib('index.ts') },
      { find: /^@qchat\/client\/crypto$/, replacement: lib('crypto/index.ts') },
    ],
  },
  // JSX through esbuild (tsconfig's "jsx": "react-jsx"); no React plugin: its
  // only gift is hot reload, at the price of Babel in the build.
  esbuild: { jsx: 'automatic', legalComments: 'none' },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: false,
    // The polyfill would be inlined into the page: the CSP allows no inline script.
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    reportCompressedSize: true,
    chunkSizeWarningLimit: 1024,
  },
});
