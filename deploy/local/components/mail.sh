# Mail catcher component: Mailpit (SMTP on $ECP_SMTP_PORT, HTTP UI/API on $ECP_MAIL_HTTP_PORT).
# Sourced after lib.sh. Defines install_mail / start_mail / stop_mail.
# Mailpit is built from the Go module proxy into $ECP_LOCAL/bin (Go's module and build caches stay
# in their default places so a warm rebuild is quick). Messages live in $ECP_DATA/mail/mailpit.db.
# Limitation: the module's source has no prebuilt web UI bundle (server/ui/dist is made by npm
# in Mailpit's release build, and the npm registry here lacks some of its pinned versions), so the
# HTML page on :$ECP_MAIL_HTTP_PORT loads without its JS/CSS. The API and SMTP are complete.
#
# Handy API paths (base http://127.0.0.1:$ECP_MAIL_HTTP_PORT):
#   GET    /api/v1/info                      version, message counts (ready check)
#   GET    /livez, /readyz                   liveness / readiness (200)
#   GET    /api/v1/messages?limit=50         list newest first
#   GET    /api/v1/search?query=to:x@y.fr    search (to:, from:, subject:"...", is:unread, ...)
#   GET    /api/v1/message/{ID}              one message (Text, HTML, headers summary)
#   GET    /api/v1/message/latest            the newest message
#   GET    /api/v1/message/{ID}/raw          raw RFC 822 source
#   DELETE /api/v1/messages                  delete all (body {"IDs":[...]} deletes some)
#   DELETE /api/v1/search?query=...          delete the messages matching a search

MAILPIT_VERSION="${MAILPIT_VERSION:-v1.33.1}"
MAILPIT_BIN="$ECP_LOCAL/bin/mailpit"
# The caught emails carry names, addresses and links: kept a week at most (docs/rgpd.md).
ECP_MAIL_RETENTION="${ECP_MAIL_RETENTION:-7d}"

# `mailpit version --no-release-check` prints "<path> v1.33.1 compiled with ..." thanks to the
# -X ldflag below (a plain go install would say "dev"); no call to GitHub.
_mailpit_version_ok() {
  [ -x "$MAILPIT_BIN" ] || return 1
  local out
  out="$("$MAILPIT_BIN" version --no-release-check 2>/dev/null)" || return 1
  [[ "$out" == *" $MAILPIT_VERSION "* ]]
}

install_mail() {
  if _mailpit_version_ok; then
    return 0
  fi
  command -v go >/dev/null 2>&1 || die "go is required to build Mailpit"
  mkdir -p "$ECP_LOCAL/bin"
  log "building Mailpit $MAILPIT_VERSION (go install, a few minutes cold)"
  GOBIN="$ECP_LOCAL/bin" CGO_ENABLED=0 GOFLAGS=-buildvcs=false \
    go install -trimpath -ldflags "-s -w -X github.com/axllent/mailpit/config.Version=$MAILPIT_VERSION" \
      "github.com/axllent/mailpit@$MAILPIT_VERSION" >>"$ECP_LOGS/mail-build.log" 2>&1 \
    || die "Mailpit build failed, see $ECP_LOGS/mail-build.log"
  _mailpit_version_ok || die "Mailpit built but '$MAILPIT_BIN version' does not report $MAILPIT_VERSION"
}

_mail_ready() {
  curl -fsS --max-time 2 "http://127.0.0.1:$ECP_MAIL_HTTP_PORT/api/v1/info" >/dev/null \
    && port_open "$ECP_SMTP_PORT"
}

start_mail() {
  [ -x "$MAILPIT_BIN" ] || install_mail
  mkdir -p "$ECP_DATA/mail"
  if ! pid_alive mail; then
    port_open "$ECP_SMTP_PORT" && die "port $ECP_SMTP_PORT already in use by another process"
    port_open "$ECP_MAIL_HTTP_PORT" && die "port $ECP_MAIL_HTTP_PORT already in use by another process"
  fi
  # --smtp-auth-accept-any + --smtp-auth-allow-insecure: any AUTH (or none) works on plain SMTP.
  # --disable-version-check: no outbound call to GitHub. MP_* env could replace these flags.
  start_bg mail "$MAILPIT_BIN" \
    --listen "127.0.0.1:$ECP_MAIL_HTTP_PORT" \
    --smtp "127.0.0.1:$ECP_SMTP_PORT" \
    --database "$ECP_DATA/mail/mailpit.db" \
    --smtp-auth-accept-any --smtp-auth-allow-insecure \
    --max 5000 --max-age "$ECP_MAIL_RETENTION" \
    --disable-version-check
  wait_for mail 30 _mail_ready
  log "mail ready: SMTP 127.0.0.1:$ECP_SMTP_PORT, UI/API http://127.0.0.1:$ECP_MAIL_HTTP_PORT"
}

stop_mail() {
  stop_pid mail
}
