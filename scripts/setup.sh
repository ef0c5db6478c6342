#!/usr/bin/env bash
# Installs what building and testing need, when it is missing: the wasm32-wasip2 Rust target
# (guests are components built for it) and redis-server (the Redis tests start their own, on a
# free loopback port). Sourced by run-example.sh and test.sh.
set -euo pipefail

if ! rustup target list --installed | grep -qx wasm32-wasip2; then
  echo "Installing the wasm32-wasip2 Rust target..." >&2
  rustup target add wasm32-wasip2
fi

if ! command -v redis-server >/dev/null 2>&1; then
  echo "Installing redis-server from Debian's packages..." >&2
  if [ "$(id -u)" -eq 0 ]; then
    sudo=()
  elif command -v sudo >/dev/null 2>&1; then
    sudo=(sudo)
  else
    echo "redis-server is missing and this user cannot install packages; install redis-server and rerun." >&2
    exit 1
  fi
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq redis-server >/dev/null
fi
