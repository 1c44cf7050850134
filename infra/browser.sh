#!/usr/bin/env bash
# The browser the console's tests drive: Debian's chromium and chromium-driver
# (/usr/bin/chromium, /usr/bin/chromedriver), installed with apt-get when missing. Browser
# builds downloaded by a tool are not used: they are not reachable from the machines we test on.
set -euo pipefail
if [[ -x /usr/bin/chromium && -x /usr/bin/chromedriver ]]; then
  exit 0
fi
as_root=()
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null; then
    as_root=(sudo)
  else
    echo "browser: chromium and chromium-driver are missing; install them as root: apt-get install chromium chromium-driver" >&2
    exit 1
  fi
fi
echo "browser: installing Debian's chromium and chromium-driver" >&2
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
/usr/bin/chromium --version >&2
