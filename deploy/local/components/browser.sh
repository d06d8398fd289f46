# Browser-test component: Debian's Chromium (driven by the Python `playwright` package from the
# venv) and axe-core (accessibility rules, injected into each page by tests/e2e).
# Sourced after lib.sh. Defines install_browser; nothing runs in the background.
# Playwright's own browser download does not work here (and would not be a Debian-maintained
# build anyway): the tests launch /usr/bin/chromium with `executable_path`.
# axe-core comes from the npm registry at a pinned version into $ECP_LOCAL/axe; the tests read
# node_modules/axe-core/axe.min.js from there (or from $ECP_AXE_JS when set).

AXE_CORE_VERSION="${AXE_CORE_VERSION:-4.14.1}"
AXE_DIR="$ECP_LOCAL/axe"
AXE_JS="$AXE_DIR/node_modules/axe-core/axe.min.js"

_axe_version_ok() {
  [ -f "$AXE_JS" ] || return 1
  # The minified file starts with "/*! axe v4.14.1": cheaper than asking node.
  head -c 200 "$AXE_JS" | grep -q "axe v$AXE_CORE_VERSION"
}

install_browser() {
  # DejaVu gives screenshots readable glyphs on a machine without any font.
  # chromium-l10n: the browser's own controls (the file picker's button) in French, as a
  # family sees them.
  apt_install chromium chromium-l10n fonts-dejavu-core
  [ -x /usr/bin/chromium ] || die "/usr/bin/chromium missing after installing Debian's chromium"
  if ! _axe_version_ok; then
    command -v npm >/dev/null 2>&1 || die "npm is required to install axe-core"
    log "installing axe-core $AXE_CORE_VERSION (npm) into $AXE_DIR"
    mkdir -p "$AXE_DIR"
    # --prefix keeps it out of the repository; no package.json is written to the repo.
    npm install --prefix "$AXE_DIR" --no-audit --no-fund --no-save "axe-core@$AXE_CORE_VERSION" \
      >>"$ECP_LOGS/axe-install.log" 2>&1 || die "npm install axe-core failed, see $ECP_LOGS/axe-install.log"
    _axe_version_ok || die "axe-core installed but $AXE_JS is not version $AXE_CORE_VERSION"
  fi
}
