# Shared helpers for the local runner. Sourced, never executed.
# Every component keeps its installs under $ECP_LOCAL, its data under $ECP_DATA/<name>,
# its log in $ECP_LOGS/<name>.log and the pid of each process it starts in $ECP_RUN/<name>.pid.
set -euo pipefail

ECP_ROOT="${ECP_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
ECP_LOCAL="${ECP_LOCAL:-$ECP_ROOT/.local}"
ECP_LOGS="$ECP_LOCAL/logs"
ECP_RUN="$ECP_LOCAL/run"
ECP_DATA="$ECP_LOCAL/data"
ECP_CACHE="$ECP_LOCAL/cache"
ECP_VENVS="$ECP_LOCAL/venvs"
mkdir -p "$ECP_LOGS" "$ECP_RUN" "$ECP_DATA" "$ECP_CACHE" "$ECP_VENVS"

# Fixed local ports: documented in README.md and deploy/local/README.md.
: "${ECP_GATEWAY_PORT:=8080}"
: "${ECP_KAFKA_PORT:=9092}"
: "${ECP_KAFKA_CONTROLLER_PORT:=9093}"
: "${ECP_KAFKA_INTERNAL_PORT:=9094}"  # broker to broker and provisioning (cluster mode: +100, +200)
: "${ECP_MONGO_PORT:=27017}"
: "${ECP_S3_PORT:=9000}"
: "${ECP_CLAMD_PORT:=3310}"
: "${ECP_SMTP_PORT:=1025}"
: "${ECP_MAIL_HTTP_PORT:=8025}"
: "${ECP_WEB_PORT:=8100}"
: "${ECP_IDENTITY_PORT:=8101}"
: "${ECP_HOUSEHOLD_PORT:=8102}"
: "${ECP_DOCUMENTS_PORT:=8103}"
: "${ECP_NOTIFIER_PORT:=8104}"
: "${ECP_ENROLMENT_PORT:=8105}"
: "${ECP_INSIGHTS_PORT:=8106}"
# Observability: Prometheus, Alertmanager (9093 is Kafka's controller), Jaeger (OTLP/HTTP in, UI/API).
: "${ECP_PROMETHEUS_PORT:=9090}"
: "${ECP_ALERTMANAGER_PORT:=9095}"
: "${ECP_OTLP_HTTP_PORT:=4318}"
: "${ECP_JAEGER_UI_PORT:=16686}"
: "${ECP_JAEGER_GRPC_PORT:=16685}"
: "${ECP_JAEGER_HEALTH_PORT:=13133}"
: "${ECP_JAEGER_METRICS_PORT:=14269}"

log() { printf '\033[1m[ecp]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[31m[ecp] ERROR:\033[0m %s\n' "$*" >&2; exit 1; }

# apt_install PKG...: installs the Debian packages that are missing (apt-get update once per run).
# Builds PACKAGE of Go module MODULE@VERSION into OUTPUT with LDFLAGS (build log: LOG). Used for
# the modules whose go.mod has a `replace` directive, which `go install module@version` refuses:
# the module is downloaded through the Go module proxy and built from a writable copy of it (the
# module cache is read-only), which is removed afterwards. Go's build cache makes rebuilds quick.
go_build_module() {
  local module="$1" version="$2" package="$3" output="$4" ldflags="$5" build_log="$6" dir src
  command -v go >/dev/null 2>&1 || die "go is required to build $module"
  dir="$(go mod download -json "$module@$version" 2>>"$build_log" \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')" \
    || die "cannot download $module@$version, see $build_log"
  src="$ECP_CACHE/go-build-$(basename "$module")-src"
  rm -rf "$src" && cp -r "$dir" "$src" && chmod -R u+w "$src" || die "cannot copy $dir to $src"
  mkdir -p "$(dirname "$output")"
  (cd "$src" && CGO_ENABLED=0 GOFLAGS=-buildvcs=false go build -trimpath -ldflags "$ldflags" \
      -o "$output.tmp" "$package") >>"$build_log" 2>&1 \
    || die "$module build failed, see $build_log"
  mv "$output.tmp" "$output"
  rm -rf "$src"
}

apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  if [ ! -f "$ECP_RUN/.apt-updated" ]; then
    log "apt-get update"
    $sudo apt-get update -qq >"$ECP_LOGS/apt.log" 2>&1 || die "apt-get update failed, see $ECP_LOGS/apt.log"
    touch "$ECP_RUN/.apt-updated"
  fi
  log "installing Debian packages: ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    >>"$ECP_LOGS/apt.log" 2>&1 || die "apt-get install ${missing[*]} failed, see $ECP_LOGS/apt.log"
}

# render_template SRC DEST VAR...: copies SRC to DEST with each ${VAR} replaced by its value
# (the variables named must be set); fails naming any ${ECP_...} placeholder left.
render_template() {
  local src="$1" dest="$2" var val; shift 2
  local tmp="$dest.tmp"
  cp "$src" "$tmp"
  for var in "$@"; do
    val="${!var}"
    val="${val//\\/\\\\}"; val="${val//|/\\|}"; val="${val//&/\\&}"
    sed -i "s|\${$var}|$val|g" "$tmp"
  done
  if grep -q '\${ECP_' "$tmp"; then
    die "unrendered placeholder in $src: $(grep -o '\${ECP_[A-Z_]*}' "$tmp" | head -1)"
  fi
  mv "$tmp" "$dest"
}

# pid_alive NAME: true when the process recorded for NAME is running.
pid_alive() {
  local f="$ECP_RUN/$1.pid" pid
  [ -f "$f" ] || return 1
  pid="$(cat "$f")"
  kill -0 "$pid" 2>/dev/null || return 1
  # A process killed -9 stays a zombie (kill -0 succeeds) until its parent reaps it, which can
  # take seconds here: it is dead, so `ecp start` right after a crash must start it again.
  [ "$(sed -n 's/.*) \(.\).*/\1/p' "/proc/$pid/stat" 2>/dev/null)" != Z ]
}

# start_bg NAME CMD...: starts CMD detached in its own session (so its children can be stopped
# with it), logs to $ECP_LOGS/NAME.log, records its pid. Does nothing when NAME already runs.
start_bg() {
  local name="$1"; shift
  if pid_alive "$name"; then
    log "$name already running (pid $(cat "$ECP_RUN/$name.pid"))"
    return 0
  fi
  setsid "$@" >>"$ECP_LOGS/$name.log" 2>&1 </dev/null &
  echo $! >"$ECP_RUN/$name.pid"
}

# port_open PORT [HOST]: true when something accepts TCP connections there.
port_open() {
  (exec 3<>"/dev/tcp/${2:-127.0.0.1}/$1") 2>/dev/null
}

# wait_for NAME TIMEOUT_S CHECK_CMD...: polls CHECK_CMD until it succeeds. Fails naming NAME and
# its log when the timeout passes or when NAME's process died meanwhile: never hangs.
wait_for() {
  local name="$1" timeout="$2"; shift 2
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    if [ -f "$ECP_RUN/$name.pid" ] && ! pid_alive "$name"; then
      tail -n 20 "$ECP_LOGS/$name.log" >&2 || true
      die "$name exited during start-up; see $ECP_LOGS/$name.log"
    fi
    if [ $SECONDS -ge $deadline ]; then
      tail -n 20 "$ECP_LOGS/$name.log" >&2 || true
      die "$name not ready after ${timeout}s; see $ECP_LOGS/$name.log"
    fi
    sleep 0.3
  done
}

# stop_pid NAME: stops the process group started for NAME (TERM, then KILL after 15 s) and
# forgets it. Only pids this runner recorded are ever signalled.
stop_pid() {
  local name="$1" f="$ECP_RUN/$1.pid" pid
  [ -f "$f" ] || return 0
  pid="$(cat "$f")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.3; done
    if kill -0 "$pid" 2>/dev/null; then
      log "$name did not stop on TERM, killing"
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$f"
}
