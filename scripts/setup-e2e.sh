#!/usr/bin/env bash
# Installs what the end-to-end tests need, idempotently: Debian's Chromium (driven by playwright-core) and a real
# VS Code, code-server 4.100.3 (VS Code 1.100.3 on Node 20; newer releases need Node 24).
# code-server lives in its own folder with its own package.json ($ATP_E2E_DIR, default .atp-cache/e2e, gitignored)
# so its heavy native builds never touch the project's lock file and `npm ci` stays clean and fast.
set -euo pipefail
cd "$(dirname "$0")/.."
E2E_DIR="${ATP_E2E_DIR:-$PWD/.atp-cache/e2e}"
CODE_SERVER_VERSION=4.100.3
export DEBIAN_FRONTEND=noninteractive

missing=()
for pkg in chromium ripgrep libkrb5-dev pkg-config; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q "${missing[@]}"
fi

stamp="$E2E_DIR/.installed-$CODE_SERVER_VERSION"
if [ -f "$stamp" ]; then echo "code-server $CODE_SERVER_VERSION already installed in $E2E_DIR"; exit 0; fi
mkdir -p "$E2E_DIR"
cd "$E2E_DIR"
[ -f package.json ] || echo '{ "name": "atp-e2e-tools", "private": true }' > package.json
npm install --no-audit --no-fund --ignore-scripts "code-server@$CODE_SERVER_VERSION"
npm_config_yes=true npm rebuild argon2
cd node_modules/code-server/lib/vscode
npm install --no-audit --no-fund --ignore-scripts --omit=dev
# @vscode/ripgrep's postinstall downloads rg from GitHub (no internet): use Debian's.
mkdir -p node_modules/@vscode/ripgrep/bin && cp /usr/bin/rg node_modules/@vscode/ripgrep/bin/rg
npm_config_yes=true npm_config_unsafe_perm=true npm rebuild
ln -sfn node_modules node_modules.asar
cd extensions && npm install --no-audit --no-fund --ignore-scripts --omit=dev
touch "$stamp"
echo "code-server $CODE_SERVER_VERSION installed in $E2E_DIR"
