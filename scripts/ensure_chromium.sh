#!/usr/bin/env bash
# The browser tests drive Debian's Chromium (Playwright never downloads a browser of its own). Before
# `make test` runs pytest: install it when it is missing and we are root, as .ci/run does; otherwise stop
# with the one command to run, rather than after minutes of tests.
set -euo pipefail

chromium="${DISCORD_ROLES_TEST_CHROMIUM:-/usr/bin/chromium}"
install="apt-get update && apt-get install -y chromium"

if [ -x "$chromium" ]; then
  exit 0
fi
if [ "$chromium" != /usr/bin/chromium ]; then
  echo "No Chromium at $chromium (DISCORD_ROLES_TEST_CHROMIUM): point it at a Chromium, or unset it to use Debian's." >&2
  exit 1
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "No Chromium at /usr/bin/chromium for the browser tests: run \`sudo sh -c '$install'\`" >&2
  exit 1
fi
echo "No Chromium at /usr/bin/chromium: installing Debian's ($install)"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
