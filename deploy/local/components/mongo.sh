# SecantusDB: a MongoDB wire-protocol server (DESIGN.md: no mongod build installs here).
# Its own venv, data under $ECP_DATA/mongo, port $ECP_MONGO_PORT.
SECANTUS_VERSION="0.7.0b3"

install_mongo() {
  local venv="$ECP_VENVS/secantus" stamp="$ECP_VENVS/secantus/.ecp-installed"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$SECANTUS_VERSION" ]; then return 0; fi
  log "installing SecantusDB $SECANTUS_VERSION (own venv)"
  python3 -m venv "$venv" || die "cannot create $venv"
  "$venv/bin/pip" install -q --pre "SecantusDB==$SECANTUS_VERSION" >"$ECP_LOGS/install-mongo.log" 2>&1 \
    || die "SecantusDB install failed, see $ECP_LOGS/install-mongo.log"
  echo "$SECANTUS_VERSION" >"$stamp"
}

mongo_ping() {
  "$ECP_VENVS/secantus/bin/python" - "$ECP_MONGO_PORT" <<'PY'
import sys
from pymongo import MongoClient
MongoClient(f"mongodb://127.0.0.1:{sys.argv[1]}/?directConnection=true", serverSelectionTimeoutMS=1000).admin.command("ping")
PY
}

start_mongo() {
  mkdir -p "$ECP_DATA/mongo"
  # --config with an empty file stops the server from picking up a stray ./secantusd.toml.
  : >"$ECP_DATA/mongo.toml"
  # --standalone, as a plain mongod: drivers then send no retryable-write ids, whose bookkeeping in
  # SecantusDB 0.7.0b3 is scanned and sorted on every write (latency grew to ~10 ms after 10k
  # writes); it also drops the oplog. The services need neither change streams nor transactions.
  start_bg mongo "$ECP_VENVS/secantus/bin/secantusd-py" --config "$ECP_DATA/mongo.toml" \
    --host 127.0.0.1 --port "$ECP_MONGO_PORT" --storage-path "$ECP_DATA/mongo" --log-level WARNING --standalone
  wait_for mongo 60 mongo_ping
}

stop_mongo() { stop_pid mongo; }
