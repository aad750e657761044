// Built by deploy/local/build-ui.sh into web/ui/dist (not committed); web/ui.py serves it.
// `npm run dev` proxies the API to a running `vigil up` on 127.0.0.1:9090.
import { defineConfig } from "vite";

export default defineConfig({
  base: "/",
  build: {
    outDir: process.env.VIGIL_UI_OUT ?? "dist",
    emptyOutDir: true,
    assetsDir: "assets",
    sourcemap: false,
    chunkSizeWarningLimit: 400,
  },
  server: {
    proxy: { "/api": "http://127.0.0.1:9090" },
  },
});
