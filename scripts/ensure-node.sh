#!/usr/bin/env bash
# Node and the third-party servers the tests start (tests/support/node/package.json): panva's
# oidc-provider, an OIDC provider we did not write. Installed under tests/support/node/node_modules.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
fi
dir=tests/support/node
stamp=$dir/node_modules/.installed-$(sha1sum "$dir/package-lock.json" | cut -c1-12)
if [ ! -e "$stamp" ]; then
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    touch "$stamp"
fi
