# Antivirus component: ClamAV's clamd from Debian, on TCP 127.0.0.1:$ECP_CLAMD_PORT.
# Sourced after lib.sh. Defines install_clamd / start_clamd / stop_clamd.
# Signature mirrors are unreachable here, so clamd loads the small database shipped in
# deploy/local/clamav/ (the EICAR test file: eicar.ndb matches the string anywhere, eicar.hsb the
# exact 68-byte file), copied into $ECP_DATA/clamav/db. Production runs freshclam instead.
# Neither Debian's clamav-daemon nor clamav-freshclam service is used (no systemd here): clamd
# runs in the foreground with our own config, as the current user (no User option: as root it
# simply stays root).

CLAMD_SIGS_SRC="$ECP_ROOT/deploy/local/clamav"
# Scan limits, aligned with the uploads (documents' ECP_MAX_UPLOAD_BYTES, 10 MB): clamd accepts
# a whole upload as one stream (StreamMaxLength above it), scans any one file or inflated part of
# up to 30 MB and 100 MB in all per upload, for at most 30 s (under the service's 60 s timeout).
# Past a limit it stops; AlertExceedsMax makes it say so (Heuristics.Limits.Exceeded.* FOUND)
# instead of "OK", and the documents service quarantines the file (« à vérifier »).
CLAMD_STREAM_MAX="${ECP_CLAMD_STREAM_MAX:-12M}"
CLAMD_MAX_FILE="${ECP_CLAMD_MAX_FILE:-30M}"
CLAMD_MAX_SCAN="${ECP_CLAMD_MAX_SCAN:-100M}"
CLAMD_MAX_SCAN_TIME_MS="${ECP_CLAMD_MAX_SCAN_TIME_MS:-30000}"

install_clamd() {
  apt_install clamav-daemon clamdscan
  command -v clamd >/dev/null 2>&1 || [ -x /usr/sbin/clamd ] || die "clamd not found after install"
}

_clamd_render() {
  local dir="$ECP_DATA/clamav"
  mkdir -p "$dir/db" "$dir/tmp"
  # Fresh copy each start: a signature removed from the repo disappears from the database too.
  rm -f "$dir/db"/*.ndb "$dir/db"/*.hsb "$dir/db"/*.hdb
  cp "$CLAMD_SIGS_SRC"/*.ndb "$CLAMD_SIGS_SRC"/*.hsb "$dir/db/"
  cat >"$dir/clamd.conf" <<CONF
# Rendered by deploy/local/components/clamd.sh: do not edit, edit the script.
Foreground yes
TCPSocket $ECP_CLAMD_PORT
TCPAddr 127.0.0.1
DatabaseDirectory $dir/db
TemporaryDirectory $dir/tmp
PidFile $dir/clamd.pid
LogSyslog no
LogTime yes
LogVerbose no
StreamMaxLength $CLAMD_STREAM_MAX
MaxFileSize $CLAMD_MAX_FILE
MaxScanSize $CLAMD_MAX_SCAN
MaxScanTime $CLAMD_MAX_SCAN_TIME_MS
AlertExceedsMax yes
MaxThreads 4
MaxConnectionQueueLength 30
ReadTimeout 120
CommandReadTimeout 30
SelfCheck 3600
ConcurrentDatabaseReload no
Bytecode no
CONF
  # clamdscan reads its own client config: same file (TCPSocket/TCPAddr) works for it.
}

# Ready check: clamd answers "PONG" to "zPING\0" (NUL-terminated commands and replies).
_clamd_ping() (
  exec 3<>"/dev/tcp/127.0.0.1/$ECP_CLAMD_PORT" || exit 1
  printf 'zPING\0' >&3
  reply=""
  IFS= read -r -d '' -t 2 reply <&3 || true
  [ "$reply" = "PONG" ]
)

start_clamd() {
  local clamd_bin
  clamd_bin="$(command -v clamd || echo /usr/sbin/clamd)"
  [ -x "$clamd_bin" ] || install_clamd
  if pid_alive clamd; then
    log "clamd already running (pid $(cat "$ECP_RUN/clamd.pid"))"
    return 0
  fi
  port_open "$ECP_CLAMD_PORT" && die "port $ECP_CLAMD_PORT already in use by another process"
  _clamd_render
  # clamd logs to stderr (no LogFile), which start_bg sends to $ECP_LOGS/clamd.log.
  start_bg clamd "$clamd_bin" --foreground --config-file="$ECP_DATA/clamav/clamd.conf"
  wait_for clamd 60 _clamd_ping
  log "clamd ready on 127.0.0.1:$ECP_CLAMD_PORT"
}

# verify_clamd: INSTREAM scans through the running clamd: the EICAR string must be FOUND and a
# clean text OK (clamdscan --stream reads TCPSocket/TCPAddr from our clamd.conf).
verify_clamd() {
  local dir="$ECP_DATA/clamav/tmp" out
  mkdir -p "$dir"
  # Assembled at run time so that no file in the repo is itself the test virus.
  printf '%s%s' 'X5O!P%@AP[4\PZX54(P^)7CC)7}$' 'EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*' >"$dir/eicar.txt"
  printf 'Bonjour, fichier propre.\n' >"$dir/clean.txt"
  out="$(clamdscan --config-file="$ECP_DATA/clamav/clamd.conf" --stream --no-summary \
    "$dir/eicar.txt" "$dir/clean.txt" 2>&1 || true)"
  rm -f "$dir/eicar.txt" "$dir/clean.txt"
  [[ "$out" == *"eicar.txt: Eicar-Test-"*" FOUND"* && "$out" == *"clean.txt: OK"* ]] \
    || die "clamd verification failed: $out"
  log "clamd verified: EICAR found, clean file OK"
}

stop_clamd() {
  stop_pid clamd
  rm -f "$ECP_DATA/clamav/clamd.pid"
}
