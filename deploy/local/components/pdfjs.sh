# pdf.js for the back-office's PDF viewer, served by the web service from $PDFJS_DIR at
# /static/pdfjs/ (ECP_PDFJS_DIR, set by services.sh). Sourced after lib.sh. Defines install_pdfjs.
# Fetched once from the npm registry at the version pinned in deploy/web-assets/fetch-pdfjs.sh;
# a second run finds the same version there and does nothing. Without it, the review page shows
# PDFs in the browser's own viewer (an iframe), as it does without JavaScript.
PDFJS_DIR="$ECP_LOCAL/pdfjs"
PDFJS_FETCH="$ECP_ROOT/deploy/web-assets/fetch-pdfjs.sh"

_pdfjs_pinned() { sed -n 's/^PDFJS_VERSION="${PDFJS_VERSION:-\(.*\)}"$/\1/p' "$PDFJS_FETCH"; }

install_pdfjs() {
  local pinned
  pinned="$(_pdfjs_pinned)"
  [ -n "$pinned" ] || die "no PDFJS_VERSION pin found in $PDFJS_FETCH"
  if [ -f "$PDFJS_DIR/pdf.min.mjs" ] && [ "$(cat "$PDFJS_DIR/VERSION" 2>/dev/null)" = "$pinned" ]; then
    return 0
  fi
  command -v npm >/dev/null 2>&1 || die "npm is required to fetch pdf.js (pdfjs-dist $pinned)"
  log "fetching pdf.js (pdfjs-dist $pinned, npm) into $PDFJS_DIR"
  PDFJS_VERSION="$pinned" sh "$PDFJS_FETCH" "$PDFJS_DIR" >>"$ECP_LOGS/pdfjs-install.log" 2>&1 \
    || die "fetching pdf.js failed, see $ECP_LOGS/pdfjs-install.log"
}
