#!/usr/bin/env bash
# The web console's scripts, taken from the npm registry at pinned versions and checked
# against their published integrity (SRI sha512 of the package tarball) before a file is
# copied. The copies are committed (api/console/static/vendor, tests/browser/vendor), so that
# the console makes no request to another site at run time and `make run` needs no npm.
# Run this to upgrade: change a version and its integrity below, run, review, commit.
set -euo pipefail
cd "$(dirname "$0")/.."

# package@version  integrity  file-in-package  destination
ASSETS=(
  "htmx.org@2.0.8 sha512-fm297iru0iWsNJlBrjvtN7V9zjaxd+69Oqjh4F/Vq9Wwi2kFisLcrLCiv5oBX0KLfOX/zG8AUo9ROMU5XUB44Q== dist/htmx.min.js api/console/static/vendor/htmx.min.js"
  "chart.js@4.5.1 sha512-GIjfiT9dbmHRiYi6Nl2yFCq7kkwdkp1W/lp2J99rX0yo9tgJGn3lKQATztIjb5tVtevcBtIdICNWqlq5+E8/Pw== dist/chart.umd.min.js api/console/static/vendor/chart.umd.min.js"
  "axe-core@4.11.0 sha512-ilYanEU8vxxBexpJd8cWM4ElSQq4QctCLKih0TSfjIfCQTeyH/6zVrmIJfLPrKTKJRbiG+cfnZbQIjAlJmF1jQ== axe.min.js tests/browser/vendor/axe.min.js"
)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for line in "${ASSETS[@]}"; do
  read -r spec integrity inner dest <<<"$line"
  tarball=$(cd "$work" && npm pack --silent "$spec")
  actual="sha512-$(openssl dgst -sha512 -binary "$work/$tarball" | base64 -w0)"
  if [[ "$actual" != "$integrity" ]]; then
    echo "vendor: $spec does not match its pinned integrity ($actual)" >&2
    exit 1
  fi
  mkdir -p "$work/${tarball%.tgz}"
  tar -xzf "$work/$tarball" -C "$work/${tarball%.tgz}"
  cp "$work/${tarball%.tgz}/package/$inner" "$dest"
  echo "vendor: $spec -> $dest"
done
