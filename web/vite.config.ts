// The dashboard build: dist/index.html plus hashed files in dist/assets/ (one JS,
// one CSS, the icon), embedded into the quotum binary by src/quotum/http/CMakeLists.txt.
// No source maps, no inlined data: URLs (the page's CSP is default-src 'self'), and
// names that depend only on content, so a rebuild of the same sources is byte-identical.
import { defineConfig } from 'vite';

export default defineConfig({
  base: '/',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    assetsDir: 'assets',
    assetsInlineLimit: 0,
    cssCodeSplit: false,
    modulePreload: { polyfill: false },
    sourcemap: false,
    target: 'es2020',
    reportCompressedSize: false,
    rollupOptions: {
      output: {
        entryFileNames: 'assets/app-[hash].js',
        chunkFileNames: 'assets/chunk-[hash].js',
        assetFileNames: 'assets/[name]-[hash][extname]',
      },
    },
  },
});
