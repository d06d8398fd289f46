# The project's own Python environment: .local/venv from requirements.lock.

install_python() {
  local venv="$ECP_LOCAL/venv" stamp="$ECP_LOCAL/venv/.ecp-lock-sha"
  local want
  want="$(sha256sum "$ECP_ROOT/requirements.lock" | cut -d' ' -f1)"
  # WeasyPrint (the documents' sworn statement PDF, the enrolment certificate) loads Pango at run
  # time, and subsets embedded fonts with HarfBuzz's subsetter when libharfbuzz-subset0 is there
  # (its fallback, fontTools, cost 85 % of a certificate's rendering CPU).
  apt_install libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then return 0; fi
  log "installing the project's Python dependencies into .local/venv"
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv" || die "cannot create $venv (python3 -m venv)"
  "$venv/bin/pip" install -q -r "$ECP_ROOT/requirements.lock" >"$ECP_LOGS/install-python.log" 2>&1 \
    || die "pip install failed, see $ECP_LOGS/install-python.log"
  echo "$want" >"$stamp"
}

ECP_PYTHON="$ECP_LOCAL/venv/bin/python"
