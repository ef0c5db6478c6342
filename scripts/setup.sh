#!/usr/bin/env bash
# Installs what building and testing need, when it is missing: the wasm32-wasip2 Rust target
# (guests are components built for it). Sourced by run-example.sh and test.sh.
set -euo pipefail

if ! rustup target list --installed | grep -qx wasm32-wasip2; then
  echo "Installing the wasm32-wasip2 Rust target..." >&2
  rustup target add wasm32-wasip2
fi
