// How every Playwright driver in tests/ launches Debian's headless Chromium:
// no sandbox (CI runs as root), no GPU, no network chatter of its own, and
// autoplay allowed so players start without a gesture.
export const chromiumOptions = {
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
  ],
};
