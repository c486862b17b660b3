#!/usr/bin/env bash
# End-to-end test of `mesalab serve` in a real headless browser (Debian's chromium, driven by
# Playwright for Python from a venv; Playwright never downloads a browser here).
#
# Starts the server on a scratch store, makes two short finished icl-gd runs and one live one,
# and checks in the browser: the runs table lists them, the live run's curve grows without a page
# reload and the page follows it to `finished`, and a comparison of the two finished runs
# overlays their curves and highlights the config key that differs. Saves screenshots to docs/.
#
# Needs target/release/mesalab (built by `cargo test --release` / `cargo build --release`).
# Installs (idempotent): apt `chromium`, a venv with playwright under target/serve-e2e-venv.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=target/release/mesalab
[ -x "$bin" ] || cargo build --release --locked -p mesalab-cli

chromium_bin=$(command -v chromium || true)
if [ -z "$chromium_bin" ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
  else
    sudo apt-get update -qq
    sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
  fi
  chromium_bin=$(command -v chromium)
fi

venv=target/serve-e2e-venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import playwright' 2>/dev/null; then
  python3 -m venv "$venv"
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 "$venv/bin/pip" install -q --disable-pip-version-check 'playwright==1.65.2'
fi

PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 CHROMIUM="$chromium_bin" MESALAB="$bin" \
  "$venv/bin/python" .ci/serve-e2e/e2e.py
