#!/usr/bin/env bash
# Re-creates vendor/candle-core: candle-core 0.11.1 as published on crates.io (its library
# sources, manifest, licence and readme; not its tests, benches and examples), with
# vendor/candle-core.patch applied. See vendor/README.md for what the patch changes and why.
#
#   bash scripts/vendor-candle.sh
set -euo pipefail
version=0.11.1
sha256=d11c8be87cfbaef9ebb62fb3f850d1fc8e00cc1d11d393fdbe55a4d5c2cdb325
root=$(cd "$(dirname "$0")/.." && pwd)
dest=$root/vendor/candle-core
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
curl -fsSL "https://static.crates.io/crates/candle-core/candle-core-$version.crate" -o "$tmp/crate.tar.gz"
echo "$sha256  $tmp/crate.tar.gz" | sha256sum --check --quiet
tar -xzf "$tmp/crate.tar.gz" -C "$tmp"
src=$tmp/candle-core-$version
rm -rf "$dest"
mkdir -p "$dest"
cp -r "$src/src" "$src/LICENSE" "$src/README.md" "$dest/"
# The published manifest names its tests, benches and examples, which are not vendored.
python3 - "$src/Cargo.toml" "$dest/Cargo.toml" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
text = re.sub(r'\n\[\[(example|test|bench)\]\]\n(?:[^\[\n][^\n]*\n)*', '\n', text)
open(sys.argv[2], 'w').write(text)
PY
patch -d "$dest" -p1 --quiet < "$root/vendor/candle-core.patch"
echo "vendor/candle-core: candle-core $version with vendor/candle-core.patch"
