#!/usr/bin/env bash
# The alert-rule tests run `promtool` (Debian's `prometheus` package ships it).
# Under CI a missing promtool is installed, and failure to install fails the run;
# elsewhere we install when we can and otherwise say how.
set -u
command -v promtool >/dev/null && exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
  echo "Installing Debian's prometheus (for promtool) for the alert-rule tests..."
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus) \
    >/tmp/signoff-promtool.log 2>&1
fi
command -v promtool >/dev/null && exit 0
if [ "${CI:-}" = "true" ]; then
  echo "CI: promtool is missing and could not be installed (see /tmp/signoff-promtool.log)." >&2
  exit 1
fi
echo "NOTE: promtool not found; the alert-rule tests will fail. Install it with: apt-get install prometheus" >&2
exit 0
