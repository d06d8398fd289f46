# Object storage component: SeaweedFS (`weed server`: master, volume, filer and S3 gateway in one
# process). Sourced after lib.sh. Defines install_s3 / start_s3 / stop_s3.
# SeaweedFS (Apache-2.0) is built from the Go module proxy into $ECP_LOCAL/bin/weed, like Mailpit;
# a plain `go install` refuses the module (its go.mod has a `replace` directive), so the
# downloaded module is copied and built with `go build ./weed` (about 8 minutes cold on 2 cores;
# Go's module and build caches stay in their default places, so a rebuild is quicker).
# Everything lives under $ECP_DATA/seaweedfs (volumes, the filer's metadata, the master's state)
# and survives a restart or a kill -9. One process, recorded as `s3` in $ECP_RUN.
#
# Every port is set explicitly (the defaults would take 8080, the gateway's, and 9101/8181):
#   S3 API 127.0.0.1:$ECP_S3_PORT            (gRPC $ECP_S3_GRPC_PORT)
#   master 127.0.0.1:$ECP_S3_MASTER_PORT     (gRPC $ECP_S3_MASTER_GRPC_PORT)
#   volume 127.0.0.1:$ECP_S3_VOLUME_PORT     (gRPC $ECP_S3_VOLUME_GRPC_PORT)
#   filer  127.0.0.1:$ECP_S3_FILER_PORT      (gRPC $ECP_S3_FILER_GRPC_PORT)
# Off: metrics ports, Iceberg and Lance catalogues, WebDAV, SFTP, IAM, telemetry, debug server.
# Nothing else listens on TCP; the parts also talk over unix sockets: the filer's and the S3
# gateway's in $ECP_RUN, and /tmp/seaweedfs-<part>-grpc-<port>.sock (a path SeaweedFS fixes).
#
# Client settings (minio SDK):
#   Minio("127.0.0.1:9000", access_key="ecp:ecp", secret_key="ecp-local-secret",
#         secure=False, region="us-east-1")            # path-style; bucket "ecp-documents"
# Server-side encryption: SSE-S3 (x-amz-server-side-encryption: AES256) is honoured and echoed:
# each object gets its own data key, wrapped by the key-encryption key made once per data folder
# ($ECP_DATA/seaweedfs/sse-kek.hex, given to the server as WEED_S3_SSE_KEK). Losing that file
# makes the encrypted objects unreadable: it stays with the data.
SEAWEEDFS_MODULE="github.com/seaweedfs/seaweedfs"
SEAWEEDFS_VERSION="${SEAWEEDFS_VERSION:-v0.0.0-20261109003541-7506e5f91cd6}"
SEAWEEDFS_COMMIT="${SEAWEEDFS_VERSION##*-}"
WEED_BIN="$ECP_LOCAL/bin/weed"

: "${ECP_S3_GRPC_PORT:=19000}"
: "${ECP_S3_MASTER_PORT:=9333}"
: "${ECP_S3_MASTER_GRPC_PORT:=19333}"
: "${ECP_S3_VOLUME_PORT:=9340}"
: "${ECP_S3_VOLUME_GRPC_PORT:=19340}"
: "${ECP_S3_FILER_PORT:=8888}"
: "${ECP_S3_FILER_GRPC_PORT:=18888}"
: "${ECP_S3_ACCESS_KEY:=ecp:ecp}"
: "${ECP_S3_SECRET_KEY:=ecp-local-secret}"
: "${ECP_S3_BUCKET:=ecp-documents}"
S3_HOME="$ECP_DATA/seaweedfs"

# `weed version` prints "version <size> <release> <commit> linux amd64": the commit comes from
# the -X ldflag below.
_weed_version_ok() {
  [ -x "$WEED_BIN" ] || return 1
  local out
  out="$("$WEED_BIN" version 2>/dev/null)" || return 1
  [[ "$out" == *" $SEAWEEDFS_COMMIT "* ]]
}

install_s3() {
  # The Swift venv of earlier versions is no longer used. Its objects ($ECP_DATA/s3) are left for
  # whoever still wants them: nothing reads them any more.
  if [ -d "$ECP_VENVS/swift" ]; then
    log "removing $ECP_VENVS/swift (OpenStack Swift, replaced by SeaweedFS)"
    rm -rf "$ECP_VENVS/swift"
  fi
  if _weed_version_ok; then
    return 0
  fi
  log "building SeaweedFS $SEAWEEDFS_VERSION (go build, about 8 minutes cold)"
  go_build_module "$SEAWEEDFS_MODULE" "$SEAWEEDFS_VERSION" ./weed "$WEED_BIN" \
    "-s -w -X $SEAWEEDFS_MODULE/weed/util/version.COMMIT=$SEAWEEDFS_COMMIT" "$ECP_LOGS/s3-build.log"
  _weed_version_ok || die "SeaweedFS built but '$WEED_BIN version' does not report $SEAWEEDFS_COMMIT"
}

# The key-encryption key of SSE-S3, made once per data folder (64 hex digits = 256 bits).
_s3_kek() {
  local f="$S3_HOME/sse-kek.hex"
  if [ ! -s "$f" ]; then
    ( umask 077; python3 -c 'import secrets; print(secrets.token_hex(32))' >"$f.tmp" )
    mv "$f.tmp" "$f"
  fi
  cat "$f"
}

# The one S3 identity the services use, rendered from the settings at every start.
_s3_identities() {
  local f="$S3_HOME/s3-identities.json"
  ( umask 077
    ECP_S3_ACCESS_KEY="$ECP_S3_ACCESS_KEY" ECP_S3_SECRET_KEY="$ECP_S3_SECRET_KEY" python3 - >"$f.tmp" <<'PY'
import json, os
print(json.dumps({"identities": [{
    "name": "ecp",
    "credentials": [{"accessKey": os.environ["ECP_S3_ACCESS_KEY"], "secretKey": os.environ["ECP_S3_SECRET_KEY"]}],
    "actions": ["Admin", "Read", "List", "Tagging", "Write"],
}]}, indent=2))
PY
  )
  mv "$f.tmp" "$f"
  echo "$f"
}

_s3_ports() {
  echo "$ECP_S3_PORT" "$ECP_S3_GRPC_PORT" "$ECP_S3_MASTER_PORT" "$ECP_S3_MASTER_GRPC_PORT" \
    "$ECP_S3_VOLUME_PORT" "$ECP_S3_VOLUME_GRPC_PORT" "$ECP_S3_FILER_PORT" "$ECP_S3_FILER_GRPC_PORT"
}

_s3_ready() {
  curl -fsS --max-time 2 -o /dev/null "http://127.0.0.1:$ECP_S3_PORT/healthz"
}

# Creates the bucket unless it exists, with the services' own S3 client (the minio SDK, SigV4:
# the access key's colon rules out SigV2's "AWS key:signature" header).
_s3_ensure_bucket() {
  ECP_S3_PORT="$ECP_S3_PORT" ECP_S3_ACCESS_KEY="$ECP_S3_ACCESS_KEY" \
  ECP_S3_SECRET_KEY="$ECP_S3_SECRET_KEY" ECP_S3_BUCKET="$ECP_S3_BUCKET" \
  "$ECP_PYTHON" - <<'PY'
import os, sys
from minio import Minio
client = Minio(f"127.0.0.1:{os.environ['ECP_S3_PORT']}", access_key=os.environ["ECP_S3_ACCESS_KEY"],
               secret_key=os.environ["ECP_S3_SECRET_KEY"], secure=False, region="us-east-1")
bucket = os.environ["ECP_S3_BUCKET"]
if not client.bucket_exists(bucket):
    client.make_bucket(bucket)
    print(f"created bucket {bucket}", file=sys.stderr)
PY
}

start_s3() {
  install_s3
  mkdir -p "$S3_HOME/data"
  if ! pid_alive s3; then
    local p
    for p in $(_s3_ports); do
      port_open "$p" && die "port $p already in use by another process"
    done
  fi
  local kek identities
  kek="$(_s3_kek)"
  identities="$(_s3_identities)"
  # -ip is the address the parts register under and call each other on; -volume.max=0 sizes the
  # volume count from the free disk; the unix sockets go to $ECP_RUN rather than /tmp.
  start_bg s3 env WEED_S3_SSE_KEK="$kek" "$WEED_BIN" server \
    -ip=127.0.0.1 -ip.bind=127.0.0.1 -dir="$S3_HOME/data" -volume.max=0 \
    -master.port="$ECP_S3_MASTER_PORT" -master.port.grpc="$ECP_S3_MASTER_GRPC_PORT" \
    -master.volumeSizeLimitMB=256 -master.telemetry=false \
    -volume.port="$ECP_S3_VOLUME_PORT" -volume.port.grpc="$ECP_S3_VOLUME_GRPC_PORT" -volume.preStopSeconds=1 \
    -filer -filer.port="$ECP_S3_FILER_PORT" -filer.port.grpc="$ECP_S3_FILER_GRPC_PORT" \
    -filer.localSocket="$ECP_RUN/s3-filer.sock" \
    -s3 -s3.port="$ECP_S3_PORT" -s3.port.grpc="$ECP_S3_GRPC_PORT" -s3.port.iceberg=0 -s3.port.lance=0 \
    -s3.config="$identities" -s3.localSocket="$ECP_RUN/s3-api.sock" \
    -metricsPort=0
  wait_for s3 120 _s3_ready
  _s3_ensure_bucket || die "cannot create bucket $ECP_S3_BUCKET, see $ECP_LOGS/s3.log"
  log "s3 ready: http://127.0.0.1:$ECP_S3_PORT (SeaweedFS; access key $ECP_S3_ACCESS_KEY, bucket $ECP_S3_BUCKET)"
}

# On TERM the volume server and the filer stop within about 2 s, but one of the remaining shutdown
# hooks may then wait on idle connections for a long time: after 5 s the process is killed, which
# loses nothing (volumes are append-only files with their index, the filer's leveldb its journal;
# objects and their metadata were checked to survive kill -9).
stop_s3() {
  if pid_alive s3; then
    local pid
    pid="$(cat "$ECP_RUN/s3.pid")"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  stop_pid s3
}
