#!/bin/sh
# Fetches pdf.js (npm package pdfjs-dist, pinned) and keeps only what the back-office's PDF viewer
# serves from our own origin (services/web/static/pdf-viewer.mjs loads it from /static/pdfjs/):
#   legacy/build/pdf.min.mjs, pdf.worker.min.mjs   the library and its worker (legacy build:
#                                                   the agents' browsers need not be the newest)
#   wasm/openjpeg_nowasm_fallback.js               JPEG 2000 images decoded in plain JavaScript
#   cmaps/, standard_fonts/                        CJK encodings, fonts a PDF names but omits
#   LICENSE                                        Apache-2.0, shipped with the files
# The viewer runs it with isEvalSupported: false and useWasm: false, so the site's CSP
# (script-src 'self', no 'unsafe-eval', no 'wasm-unsafe-eval') stays unchanged.
# Used by deploy/local/components/pdfjs.sh (`make up`) and deploy/docker/Dockerfile (web image).
#   fetch-pdfjs.sh DEST      DEST/<files above> and DEST/VERSION; needs npm (the registry client,
#                            which checks the tarball against the registry's sha512 integrity).
set -eu
PDFJS_VERSION="${PDFJS_VERSION:-5.6.205}"
dest="$1"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "pdfjs-dist@$PDFJS_VERSION" >/dev/null)
tar -xzf "$work/pdfjs-dist-$PDFJS_VERSION.tgz" -C "$work"
package="$work/package"
rm -rf "$dest.tmp" && mkdir -p "$dest.tmp/wasm"
cp "$package/legacy/build/pdf.min.mjs" "$package/legacy/build/pdf.worker.min.mjs" "$package/LICENSE" "$dest.tmp/"
cp "$package/wasm/openjpeg_nowasm_fallback.js" "$package/wasm/LICENSE_OPENJPEG" "$package/wasm/LICENSE_PDFJS_OPENJPEG" "$dest.tmp/wasm/"
cp -R "$package/cmaps" "$package/standard_fonts" "$dest.tmp/"
echo "$PDFJS_VERSION" >"$dest.tmp/VERSION"
# Swapped in whole: a web service never serves half a copy.
rm -rf "$dest" && mv "$dest.tmp" "$dest"
