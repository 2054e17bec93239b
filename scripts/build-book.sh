#!/usr/bin/env bash
# Builds the book (docs/, mdBook) into target/book/; a missing page or a broken SUMMARY.md fails
# it. tests/docs_links.rs checks the links, which mdBook does not check outside the book.
#
#   scripts/build-book.sh             # then open target/book/index.html
#
# Uses the `mdbook` on PATH if there is one; otherwise installs mdBook from crates.io into
# .runtime/mdbook once (about 3 minutes of compilation on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -gt 0 ]; then
  echo "error: scripts/build-book.sh takes no arguments (got: $*)" >&2
  exit 2
fi
version=0.5.4
mdbook=$(command -v mdbook || true)
if [ -z "$mdbook" ]; then
  mdbook=.runtime/mdbook/bin/mdbook
  if [ ! -x "$mdbook" ] || ! "$mdbook" --version | grep -qF "$version"; then
    echo "installing mdBook $version into .runtime/mdbook" >&2
    cargo install mdbook --version "$version" --locked --quiet --no-default-features \
      --features search --root .runtime/mdbook
  fi
fi
"$mdbook" build docs
