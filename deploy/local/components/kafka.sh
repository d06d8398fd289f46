# Kafka for the local runner: Apache Kafka 4.x in KRaft mode, one process that is broker and
# controller, on 127.0.0.1:$ECP_KAFKA_PORT (PLAINTEXT) and 127.0.0.1:$ECP_KAFKA_CONTROLLER_PORT.
# Sourced after lib.sh; defines install_kafka, start_kafka, stop_kafka.
#   jars:   $ECP_LOCAL/kafka/libs (from Maven Central via deploy/local/kafka/pom.xml)
#   config: $ECP_DATA/kafka/server.properties (rendered from deploy/local/kafka/server.properties)
#   data:   $ECP_DATA/kafka/data           log: $ECP_LOGS/kafka.log
# Operators use deploy/local/bin/kafka-cli (Kafka's own CLI classes from the same jars).

: "${ECP_KAFKA_VERSION:=4.1.1}"
: "${ECP_KAFKA_HEAP_OPTS:=-Xms256m -Xmx512m}"
ECP_KAFKA_SRC="$ECP_ROOT/deploy/local/kafka"

# Stamp content: the version and the pom's checksum, so that editing either re-fetches.
_kafka_stamp() {
  printf '%s %s\n' "$ECP_KAFKA_VERSION" "$(sha256sum "$ECP_KAFKA_SRC/pom.xml" | cut -c1-16)"
}

install_kafka() {
  local home="$ECP_LOCAL/kafka" stamp="$ECP_LOCAL/kafka/.installed"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$(_kafka_stamp)" ] \
      && compgen -G "$home/libs/kafka_2.13-$ECP_KAFKA_VERSION.jar" >/dev/null; then
    log "kafka $ECP_KAFKA_VERSION already installed"
    return 0
  fi
  command -v java >/dev/null || apt_install openjdk-17-jre-headless
  command -v mvn >/dev/null || apt_install maven
  log "installing kafka $ECP_KAFKA_VERSION jars from Maven Central into $home/libs"
  mkdir -p "$home"
  rm -rf "$home/libs.new"
  mvn -q -B -f "$ECP_KAFKA_SRC/pom.xml" dependency:copy-dependencies \
      -Dkafka.version="$ECP_KAFKA_VERSION" -DoutputDirectory="$home/libs.new" \
      >"$ECP_LOGS/kafka-install.log" 2>&1 \
    || { tail -n 20 "$ECP_LOGS/kafka-install.log" >&2; die "kafka download failed, see $ECP_LOGS/kafka-install.log"; }
  [ -f "$home/libs.new/kafka_2.13-$ECP_KAFKA_VERSION.jar" ] \
    && [ -f "$home/libs.new/kafka-tools-$ECP_KAFKA_VERSION.jar" ] \
    || die "kafka download incomplete, see $ECP_LOGS/kafka-install.log"
  rm -rf "$home/libs"
  mv "$home/libs.new" "$home/libs"
  _kafka_stamp >"$stamp"
}

# _kafka_java ARGS...: java on the Kafka jars with the quiet CLI logging (for one-shot tools).
_kafka_java() {
  java -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
    -Dlog4j2.configurationFile="$ECP_KAFKA_SRC/log4j2-cli.properties" \
    -cp "$ECP_LOCAL/kafka/libs/*" "$@"
}

# _kafka_ready [PORT]: true when the broker answers a Kafka ApiVersions request (v0) with error
# code 0. The broker processes requests only once it has joined the quorum and been unfenced, so
# this proves more than an open port, and costs milliseconds instead of a JVM start.
_kafka_ready() {
  local reply
  reply="$(timeout 5 bash -c '
    exec 3<>"/dev/tcp/127.0.0.1/$0" || exit 1
    # size 13 | api_key 18 (ApiVersions) | api_version 0 | correlation_id 1 | client_id "ecp"
    printf "\x00\x00\x00\x0d\x00\x12\x00\x00\x00\x00\x00\x01\x00\x03ecp" >&3
    head -c 10 <&3 | od -An -tx1' "${1:-$ECP_KAFKA_PORT}" 2>/dev/null)" || return 1
  reply="${reply//[[:space:]]/}"
  # bytes 4..9 of the response: correlation_id 1, error_code 0
  [ "${reply:8:12}" = "000000010000" ]
}

start_kafka() {
  local home="$ECP_LOCAL/kafka" dir="$ECP_DATA/kafka"
  local props="$ECP_DATA/kafka/server.properties" data="$ECP_DATA/kafka/data"
  [ -f "$home/.installed" ] || die "kafka is not installed (run install_kafka)"
  if ! pid_alive kafka; then
    local port
    for port in "$ECP_KAFKA_PORT" "$ECP_KAFKA_CONTROLLER_PORT"; do
      port_open "$port" && die "port $port is already in use by a process this runner did not start"
    done
    mkdir -p "$data"
    sed -e "s|@KAFKA_PORT@|$ECP_KAFKA_PORT|g" \
        -e "s|@CONTROLLER_PORT@|$ECP_KAFKA_CONTROLLER_PORT|g" \
        -e "s|@LOG_DIRS@|$data|g" \
        "$ECP_KAFKA_SRC/server.properties" >"$props"
    if [ ! -f "$data/meta.properties" ]; then
      local cluster_id
      [ -s "$dir/cluster.id" ] || _kafka_java kafka.tools.StorageTool random-uuid >"$dir/cluster.id"
      cluster_id="$(cat "$dir/cluster.id")"
      log "formatting kafka storage (cluster $cluster_id) in $data"
      _kafka_java kafka.tools.StorageTool format --standalone -t "$cluster_id" -c "$props" \
          >>"$ECP_LOGS/kafka.log" 2>&1 \
        || { tail -n 20 "$ECP_LOGS/kafka.log" >&2; die "kafka storage format failed, see $ECP_LOGS/kafka.log"; }
    fi
    log "starting kafka on 127.0.0.1:$ECP_KAFKA_PORT"
  fi
  # shellcheck disable=SC2086  # heap options are a word list
  start_bg kafka java $ECP_KAFKA_HEAP_OPTS -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$ECP_KAFKA_SRC/log4j2.properties" \
    -cp "$home/libs/*" kafka.Kafka "$props"
  wait_for kafka 90 _kafka_ready
  log "kafka ready on 127.0.0.1:$ECP_KAFKA_PORT"
}

stop_kafka() {
  stop_pid kafka
}
