// The app's build: one origin, no inline script (the CSP forbids it), and
// output that depends only on the sources, so that the committed bundle can be
// compared with a fresh build (web/web_test.go).
import { defineConfig } from 'vite';

export default defineConfig({
  base: '/',
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
