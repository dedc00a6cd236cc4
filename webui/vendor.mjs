// Copies the pinned hls.js build from node_modules into vendor/, where the
// appliance binary embeds it. Run `npm ci && npm run vendor` after changing
// the version in package.json; the lock file pins the exact tarball.
import { copyFileSync, mkdirSync } from "node:fs";

mkdirSync("vendor", { recursive: true });
copyFileSync("node_modules/hls.js/dist/hls.min.js", "vendor/hls.min.js");
console.log("vendored hls.js into vendor/hls.min.js");
