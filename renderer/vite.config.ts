// Builds the renderer into dist/renderer with relative asset paths, so that the same files load
// from `deskgrid node --ui` over HTTP and from the desktop app's window.
import { svelte } from '@sveltejs/vite-plugin-svelte';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: './',
  plugins: [svelte()],
  build: {
    outDir: fileURLToPath(new URL('../dist/renderer', import.meta.url)),
    emptyOutDir: true,
    // No inline scripts or data: URLs in the output: the Content-Security-Policy forbids them.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    target: 'es2022',
    // The per-plugin timing report is noise in every build's output.
    rolldownOptions: { checks: { bundlerTimings: false } },
  },
});
