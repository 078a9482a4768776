#!/bin/bash
# The habits the build enforces, before the tests (.ci/run): formatting, clippy with every
# warning an error (the workspace lints in Cargo.toml, clippy.toml), and cargo-deny for
# licences, banned crates and sources. The advisory database is a git repository on GitHub,
# out of reach of this project's machines, so `cargo deny check advisories` is not run here.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo fmt --all --check
cargo clippy --locked --workspace --all-targets -- -D warnings
if command -v cargo-deny >/dev/null; then
  cargo deny check licenses bans sources
else
  # The project's machines (and so CI) carry cargo-deny next to cargo; where it is missing,
  # building it would take minutes of two cores: `cargo install --locked cargo-deny` turns
  # this check on.
  echo "lint: cargo-deny is not installed; licences, bans and sources not checked" >&2
fi
