# Object storage component: OpenStack Swift all-in-one with its S3 API (s3api + tempauth).
# Sourced after lib.sh. Defines install_s3 / start_s3 / stop_s3.
# Swift (PyPI swift==$SWIFT_VERSION) lives in its own venv $ECP_VENVS/swift. Templates in
# deploy/local/s3/ are rendered into $ECP_DATA/s3/etc (swift_dir of every server, so nothing
# reads /etc/swift), rings are built there, objects live under $ECP_DATA/s3/srv/d1.
# Processes (each recorded by start_bg, run in the foreground so the pid is the real parent):
#   s3-account 127.0.0.1:$ECP_S3_ACCOUNT_PORT   s3-container 127.0.0.1:$ECP_S3_CONTAINER_PORT
#   s3-object  127.0.0.1:$ECP_S3_OBJECT_PORT    s3-proxy     127.0.0.1:$ECP_S3_PORT (S3 API)
#
# Client settings (minio SDK):
#   Minio("127.0.0.1:9000", access_key="ecp:ecp", secret_key="ecp-local-secret",
#         secure=False, region="us-east-1")            # path-style; bucket "ecp-documents"
# Server-side encryption: every object is encrypted at rest (keymaster + encryption, root secret
# in $ECP_DATA/s3/secrets.env). SSE-S3 (x-amz-server-side-encryption: AES256) is accepted and
# echoed; SSE-KMS is refused (501); SSE-C headers are IGNORED by Swift (the object is stored with
# the server key and reads back without the customer key): do not rely on SSE-C here.
SWIFT_VERSION="${SWIFT_VERSION:-2.38.3}"
SWIFT_VENV="$ECP_VENVS/swift"

install_s3() {
  local stamp="$SWIFT_VENV/.ecp-installed"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "swift==$SWIFT_VERSION" ] \
     && [ -x "$SWIFT_VENV/bin/swift-proxy-server" ]; then
    return 0
  fi
  log "installing swift==$SWIFT_VERSION into $SWIFT_VENV"
  [ -x "$SWIFT_VENV/bin/python" ] || python3 -m venv "$SWIFT_VENV" || die "cannot create $SWIFT_VENV"
  local pip=("$SWIFT_VENV/bin/pip" install -q --disable-pip-version-check)
  if ! "${pip[@]}" "swift==$SWIFT_VERSION" >>"$ECP_LOGS/s3-install.log" 2>&1; then
    # No wheel for lxml / PyECLib / xattr on this Python: build them against Debian's libraries.
    apt_install build-essential liberasurecode-dev libxml2-dev libxslt1-dev libffi-dev
    "${pip[@]}" "swift==$SWIFT_VERSION" >>"$ECP_LOGS/s3-install.log" 2>&1 \
      || die "pip install swift==$SWIFT_VERSION failed, see $ECP_LOGS/s3-install.log"
  fi
  "$SWIFT_VENV/bin/python" -c 'import swift.proxy.server, pyeclib.ec_iface, lxml.etree, xattr' \
    >>"$ECP_LOGS/s3-install.log" 2>&1 || die "swift installed but does not import, see $ECP_LOGS/s3-install.log"
  echo "swift==$SWIFT_VERSION" >"$stamp"
}

: "${ECP_S3_OBJECT_PORT:=6200}"
: "${ECP_S3_CONTAINER_PORT:=6201}"
: "${ECP_S3_ACCOUNT_PORT:=6202}"
: "${ECP_S3_ACCESS_KEY:=ecp:ecp}"
: "${ECP_S3_SECRET_KEY:=ecp-local-secret}"
: "${ECP_S3_BUCKET:=ecp-documents}"
S3_HOME="$ECP_DATA/s3"
S3_ETC="$S3_HOME/etc"
S3_SRV="$S3_HOME/srv"
S3_TEMPLATES="$ECP_ROOT/deploy/local/s3"
S3_SERVERS=(account container object proxy)

# Secrets made once per data folder (hash path prefix/suffix, encryption root secret): changing
# them later would make the stored objects unreachable or undecryptable, so they stay with the data.
_s3_secrets() {
  local f="$S3_HOME/secrets.env"
  if [ ! -f "$f" ]; then
    mkdir -p "$S3_HOME"
    ( umask 077
      printf 'HASH_PREFIX=%s\nHASH_SUFFIX=%s\nROOT_SECRET=%s\n' \
        $(python3 -c 'import secrets, base64
print(secrets.token_hex(16), secrets.token_hex(16), base64.b64encode(secrets.token_bytes(32)).decode())') \
        >"$f.tmp" )
    mv "$f.tmp" "$f"
  fi
  # shellcheck disable=SC1090
  . "$f"
}

_s3_render() {
  local src="$1" dst="$2"
  sed -e "s|@ETC@|$S3_ETC|g" -e "s|@SRV@|$S3_SRV|g" -e "s|@USER@|$(id -un)|g" \
      -e "s|@S3_PORT@|$ECP_S3_PORT|g" -e "s|@OBJECT_PORT@|$ECP_S3_OBJECT_PORT|g" \
      -e "s|@CONTAINER_PORT@|$ECP_S3_CONTAINER_PORT|g" -e "s|@ACCOUNT_PORT@|$ECP_S3_ACCOUNT_PORT|g" \
      -e "s|@S3_SECRET@|$ECP_S3_SECRET_KEY|g" -e "s|@HASH_PREFIX@|$HASH_PREFIX|g" \
      -e "s|@HASH_SUFFIX@|$HASH_SUFFIX|g" -e "s|@ROOT_SECRET@|$ROOT_SECRET|g" \
      "$src" >"$dst.tmp"
  chmod 600 "$dst.tmp"
  mv "$dst.tmp" "$dst"
}

# One ring per kind: one device (d1), 1 replica. Rebuilt only when missing or when its port changed.
_s3_rings() {
  local rb="$SWIFT_VENV/bin/swift-ring-builder" kind port rc
  for kind in account container object; do
    case $kind in
      account) port=$ECP_S3_ACCOUNT_PORT ;; container) port=$ECP_S3_CONTAINER_PORT ;; object) port=$ECP_S3_OBJECT_PORT ;;
    esac
    if [ -f "$S3_ETC/$kind.ring.gz" ] && [ "$(cat "$S3_ETC/$kind.ring.port" 2>/dev/null)" = "$port" ]; then
      continue
    fi
    rm -f "$S3_ETC/$kind.builder" "$S3_ETC/$kind.ring.gz"
    {
      "$rb" "$S3_ETC/$kind.builder" create 8 1 1 &&
      "$rb" "$S3_ETC/$kind.builder" add --region 1 --zone 1 --ip 127.0.0.1 --port "$port" \
        --device d1 --weight 100
    } >>"$ECP_LOGS/s3-ring.log" 2>&1 || die "swift-ring-builder $kind failed, see $ECP_LOGS/s3-ring.log"
    rc=0; "$rb" "$S3_ETC/$kind.builder" rebalance >>"$ECP_LOGS/s3-ring.log" 2>&1 || rc=$?
    # exit 1 is a warning (e.g. fewer devices than a balanced ring wants), 2 an error
    [ $rc -le 1 ] && [ -f "$S3_ETC/$kind.ring.gz" ] || die "ring rebalance $kind failed, see $ECP_LOGS/s3-ring.log"
    echo "$port" >"$S3_ETC/$kind.ring.port"
  done
}

_s3_proxy_ready() {
  curl -fsS --max-time 2 "http://127.0.0.1:$ECP_S3_PORT/healthcheck" | grep -q OK
}

# HEAD then PUT the bucket with an S3 V2-signed request (stdlib only; s3api accepts V2 and V4).
_s3_ensure_bucket() {
  ECP_S3_PORT="$ECP_S3_PORT" ECP_S3_ACCESS_KEY="$ECP_S3_ACCESS_KEY" \
  ECP_S3_SECRET_KEY="$ECP_S3_SECRET_KEY" ECP_S3_BUCKET="$ECP_S3_BUCKET" \
  "$SWIFT_VENV/bin/python" - <<'PY'
import base64, hmac, hashlib, http.client, os, sys
from email.utils import formatdate
port, bucket = int(os.environ["ECP_S3_PORT"]), os.environ["ECP_S3_BUCKET"]
access, secret = os.environ["ECP_S3_ACCESS_KEY"], os.environ["ECP_S3_SECRET_KEY"]
def call(method):
    date = formatdate(usegmt=True)
    sig = base64.b64encode(hmac.new(secret.encode(), f"{method}\n\n\n{date}\n/{bucket}".encode(),
                                    hashlib.sha1).digest()).decode()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request(method, f"/{bucket}", headers={"Date": date, "Authorization": f"AWS {access}:{sig}"})
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp.status, body
status, _ = call("HEAD")
if status == 200:
    sys.exit(0)
if status != 404:
    sys.exit(f"HEAD /{bucket}: HTTP {status}")
status, body = call("PUT")
if status != 200 and b"BucketAlreadyOwnedByYou" not in body:
    sys.exit(f"PUT /{bucket}: HTTP {status} {body[:300]!r}")
print(f"created bucket {bucket}", file=sys.stderr)
PY
}

start_s3() {
  install_s3
  local s
  local running=""
  for s in "${S3_SERVERS[@]}"; do pid_alive "s3-$s" && running=1; done
  if [ -z "$running" ]; then
    local p
    for p in "$ECP_S3_PORT" "$ECP_S3_ACCOUNT_PORT" "$ECP_S3_CONTAINER_PORT" "$ECP_S3_OBJECT_PORT"; do
      port_open "$p" && die "port $p already in use by another process"
    done
  fi
  mkdir -p "$S3_ETC" "$S3_SRV/d1"
  _s3_secrets
  _s3_render "$S3_TEMPLATES/swift.conf" "$S3_ETC/swift.conf"
  for s in "${S3_SERVERS[@]}"; do
    _s3_render "$S3_TEMPLATES/$s-server.conf" "$S3_ETC/$s-server.conf"
  done
  _s3_rings
  # Each server runs in the foreground (swift-*-server CONF, no swift-init): the pid start_bg
  # records is the server's parent, which on TERM kills its workers (killpg) and exits.
  # -v also logs to stderr, i.e. into $ECP_LOGS/s3-<kind>.log (there is no syslog here).
  local port
  for s in account container object; do
    start_bg "s3-$s" "$SWIFT_VENV/bin/swift-$s-server" "$S3_ETC/$s-server.conf" -v
  done
  for s in account container object; do
    case $s in
      account) port=$ECP_S3_ACCOUNT_PORT ;; container) port=$ECP_S3_CONTAINER_PORT ;; object) port=$ECP_S3_OBJECT_PORT ;;
    esac
    wait_for "s3-$s" 60 curl -fsS --max-time 2 "http://127.0.0.1:$port/healthcheck"
  done
  start_bg s3-proxy "$SWIFT_VENV/bin/swift-proxy-server" "$S3_ETC/proxy-server.conf" -v
  wait_for s3-proxy 60 _s3_proxy_ready
  _s3_ensure_bucket || die "cannot create bucket $ECP_S3_BUCKET, see $ECP_LOGS/s3-proxy.log"
  log "s3 ready: http://127.0.0.1:$ECP_S3_PORT (access key $ECP_S3_ACCESS_KEY, bucket $ECP_S3_BUCKET)"
}

stop_s3() {
  # The four servers take ~2 s each to drain on TERM: stop them side by side (waiting on these
  # pids only, never on the caller's other background jobs).
  local s pids=()
  for s in "${S3_SERVERS[@]}"; do
    stop_pid "s3-$s" &
    pids+=($!)
  done
  wait "${pids[@]}"
}
