// Builds the web UI into the Python package (infersight/sinks/static), with Swagger UI's files,
// so that the package serves both without a CDN. Run `npm ci && npm run build` after changing src/.
import { copyFileSync, mkdirSync } from "node:fs";
import { build } from "esbuild";

const out = new URL("../infersight/sinks/static/", import.meta.url).pathname;
mkdirSync(out, { recursive: true });
await build({
  entryPoints: ["src/main.js"],
  bundle: true,
  minify: true,
  format: "iife",
  target: "es2020",
  legalComments: "eof",
  outfile: `${out}ui.js`,
});
copyFileSync("src/style.css", `${out}ui.css`);
copyFileSync("src/index.html", `${out}ui.html`);
for (const name of ["swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png", "LICENSE"]) {
  copyFileSync(`node_modules/swagger-ui-dist/${name}`, `${out}${name === "LICENSE" ? "swagger-ui.LICENSE" : name}`);
}
