#!/usr/bin/env bash
# Installs the pinned front-end libraries (package-lock.json, npm ci) and
# copies the files zen ui embeds into DEST (default ../assets/vendor):
# make ui-assets writes them there, make ui-assets-check builds them into
# a temporary folder and compares.
set -euo pipefail
cd "$(dirname "$0")"
dest="$(realpath -m "${1:-../assets/vendor}")"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp package.json package-lock.json "$work/"
(cd "$work" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error >/dev/null)
mkdir -p "$dest"
m="$work/node_modules"
cp "$m/@dagrejs/dagre/dist/dagre.min.js" "$dest/dagre.min.js"
cp "$m/@dagrejs/dagre/dist/dagre.min.js.LEGAL.txt" "$dest/dagre.min.js.LEGAL.txt"
cp "$m/uplot/dist/uPlot.iife.min.js" "$dest/uPlot.iife.min.js"
cp "$m/uplot/dist/uPlot.min.css" "$dest/uPlot.min.css"
cp "$m/uplot/LICENSE" "$dest/uPlot.LICENSE.txt"
