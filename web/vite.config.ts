import { defineConfig } from "vite";

// `npm run dev` proxies the API to a comfycpp on 127.0.0.1:8188; `npm run build` writes dist/,
// which comfycpp serves itself (--front-end-root).
export default defineConfig({
  base: "./",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    chunkSizeWarningLimit: 1200,
    rollupOptions: {
      // litegraph evaluates number-widget expressions with a direct eval; nothing to fix here.
      onwarn(warning: any, warn: (w: any) => void) {
        if (warning.code === "EVAL") return;
        warn(warning);
      },
    },
  },
  server: { proxy: { "/api": { target: process.env.COMFYCPP_URL ?? "http://127.0.0.1:8188", ws: true } } },
  test: { include: ["tests/unit/**/*.test.ts"], testTimeout: 30000 },
} as any);
