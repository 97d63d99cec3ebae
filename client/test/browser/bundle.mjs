// The Chromium scenario's page (page.jsx) bundled with esbuild: the
// provider and hooks of client/react.js, and the seed's React hook and
// usage example (seed-fixes.mjs) as the virtual module "seed:react".
// React's development build, so StrictMode mounts twice as in development.
import { build } from "esbuild";
import { seedModule } from "./seed-fixes.mjs";

const here = new URL(".", import.meta.url).pathname;

const seed = {
  name: "seed",
  setup(plugins) {
    plugins.onResolve({ filter: /^seed:react$/ }, () => ({ path: "react", namespace: "seed" }));
    plugins.onLoad({ filter: /.*/, namespace: "seed" }, () => ({ contents: seedModule(), loader: "jsx", resolveDir: here }));
  },
};

/** The page's script, as text. */
export async function bundlePage() {
  const result = await build({
    entryPoints: [`${here}page.jsx`],
    bundle: true,
    format: "esm",
    platform: "browser",
    jsx: "automatic",
    define: { "process.env.NODE_ENV": '"development"' },
    plugins: [seed],
    write: false,
    logLevel: "silent",
  });
  return result.outputFiles[0].text;
}
