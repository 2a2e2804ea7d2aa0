# Shared by ci/ scripts that run Synapse on loopback (ci/synapse, ci/compare-synapse).
# Source it after ci/venv.sh and `cd "$GLIA_REPO_ROOT"`, then:
#
#   synapse_install          # the pinned matrix-synapse in $GLIA_VENV_DIR/synapse; sets PY
#   synapse_start "$WORK"    # config in $WORK (SQLite, open registration, no rate limits),
#                            # started in the background; sets PORT, BASE_URL, SYNAPSE_PID
#
# SYNAPSE_BCRYPT_ROUNDS (default 4: scenarios register many users) sets bcrypt_rounds.
#   synapse_stop             # TERM, then KILL after 10 s; a no-op when not running
#
# $SYNAPSE_PID is Synapse's python process itself (for its RSS).

synapse_install() {
    SYNAPSE_VERSION="${GLIA_SYNAPSE_VERSION:-1.163.2}"
    SHARED_SECRET="harness-shared-secret"
    START_TIMEOUT="${GLIA_SYNAPSE_START_TIMEOUT:-120}"

    glia_venv synapse "matrix-synapse==$SYNAPSE_VERSION"
    PY="$GLIA_VENV_DIR/synapse/bin/python"
    # Synapse appends `git describe` of its install directory to its version; the venv is
    # inside this repository, so keep git from finding Glia's history there.
    export GIT_CEILING_DIRECTORIES="$GLIA_VENV_DIR"
    echo "Synapse version: $("$PY" -c 'import synapse; print(synapse.__version__)')"
}

synapse_free_port() {
    "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

synapse_start() {
    local WORK="$1"
    PORT="$(synapse_free_port)"
    BASE_URL="http://127.0.0.1:$PORT"
    # GLIA_SYNAPSE_FEDERATION=1: named localhost:<port>, serving federation over TLS there
    # with the test CA's certificate, trusting that CA and loopback peers (sets SERVER_NAME).
    SERVER_NAME=localhost
    local FED_LISTENER="" FED_CONFIG=""
    if [[ "${GLIA_SYNAPSE_FEDERATION:-0}" == 1 ]]; then
        local FED_PORT TLS_DIR="$GLIA_REPO_ROOT/fixtures/tls"
        FED_PORT="$(synapse_free_port)"
        SERVER_NAME="localhost:$FED_PORT"
        FED_LISTENER="  - port: $FED_PORT
    bind_addresses: ['127.0.0.1']
    type: http
    tls: true
    resources:
      - names: [client, federation]
        compress: false"
        FED_CONFIG="tls_certificate_path: \"$TLS_DIR/server.crt\"
tls_private_key_path: \"$TLS_DIR/server.key\"
federation_custom_ca_list: [\"$TLS_DIR/ca.crt\"]
federation_verify_certificates: true
ip_range_whitelist: ['127.0.0.0/8', '::1/128']"
    fi

    # Run inside $WORK: the generated log config and keys land in the data directory.
    (cd "$WORK" && "$PY" -m synapse.app.homeserver --server-name "$SERVER_NAME" \
        --config-path "$WORK/homeserver.yaml" --data-directory "$WORK" \
        --generate-config --report-stats=no >/dev/null)

    # Later config files override top-level keys of earlier ones.
    cat >"$WORK/overrides.yaml" <<YAML
listeners:
  - port: $PORT
    bind_addresses: ['127.0.0.1']
    type: http
    tls: false
    x_forwarded: false
    resources:
      - names: [client, federation]
        compress: false
$FED_LISTENER
$FED_CONFIG
database:
  name: sqlite3
  args:
    database: "$WORK/homeserver.db"
media_store_path: "$WORK/media_store"
public_baseurl: "$BASE_URL/"
enable_registration: true
enable_registration_without_verification: true
allow_guest_access: true
# Let ordinary users publish rooms to the directory, as Glia does (Synapse's default
# allows only server admins).
room_list_publication_rules: [{action: allow}]
registration_shared_secret: "$SHARED_SECRET"
report_stats: false
trusted_key_servers: []
suppress_key_server_warning: true
# Glia always sends server notices (there is no config key yet); Synapse needs this section
# for /_synapse/admin/v1/send_server_notice.
server_notices:
  system_mxid_localpart: _server
  system_mxid_display_name: "Server Notices"
  room_name: "Server Notices"
# Cheap password hashing: scenarios register many users.
bcrypt_rounds: ${SYNAPSE_BCRYPT_ROUNDS:-4}
# No throttling: scenarios register, log in and fail logins far faster than people do.
rc_message: {per_second: 10000, burst_count: 100000}
rc_registration: {per_second: 10000, burst_count: 100000}
rc_registration_token_validity: {per_second: 10000, burst_count: 100000}
rc_login:
  address: {per_second: 10000, burst_count: 100000}
  account: {per_second: 10000, burst_count: 100000}
  failed_attempts: {per_second: 10000, burst_count: 100000}
rc_admin_redaction: {per_second: 10000, burst_count: 100000}
rc_joins:
  local: {per_second: 10000, burst_count: 100000}
  remote: {per_second: 10000, burst_count: 100000}
rc_joins_per_room: {per_second: 10000, burst_count: 100000}
rc_3pid_validation: {per_second: 10000, burst_count: 100000}
rc_invites:
  per_room: {per_second: 10000, burst_count: 100000}
  per_user: {per_second: 10000, burst_count: 100000}
  per_issuer: {per_second: 10000, burst_count: 100000}
rc_third_party_invite: {per_second: 10000, burst_count: 100000}
rc_media_create: {per_second: 10000, burst_count: 100000}
rc_presence:
  per_user: {per_second: 10000, burst_count: 100000}
rc_delayed_event_mgmt: {per_second: 10000, burst_count: 100000}
rc_room_creation: {per_second: 10000, burst_count: 100000}
rc_reports: {per_second: 10000, burst_count: 100000}
rc_user_directory: {per_second: 10000, burst_count: 100000}
rc_profile: {per_second: 10000, burst_count: 100000}
rc_key_requests: {per_second: 10000, burst_count: 100000}
rc_federation:
  window_size: 1000
  sleep_limit: 10000
  sleep_delay: 0
  reject_limit: 10000
  concurrent: 10000
YAML

    echo "starting Synapse on $BASE_URL (directory $WORK)"
    START=$SECONDS
    (cd "$WORK" && exec "$PY" -m synapse.app.homeserver \
        -c "$WORK/homeserver.yaml" -c "$WORK/overrides.yaml" >"$WORK/synapse.out" 2>&1) &
    SYNAPSE_PID=$!

    while ! curl -fsS -o /dev/null --max-time 2 "$BASE_URL/_matrix/client/versions" 2>/dev/null; do
        if ! kill -0 "$SYNAPSE_PID" 2>/dev/null; then
            echo "Synapse exited before answering:" >&2
            tail -n 50 "$WORK/synapse.out" "$WORK/homeserver.log" >&2 2>/dev/null || true
            exit 1
        fi
        if ((SECONDS - START >= START_TIMEOUT)); then
            echo "Synapse did not answer $BASE_URL/_matrix/client/versions within ${START_TIMEOUT} s" >&2
            tail -n 50 "$WORK/synapse.out" "$WORK/homeserver.log" >&2 2>/dev/null || true
            exit 1
        fi
        sleep 0.2
    done
    echo "Synapse answering after $((SECONDS - START)) s: $(curl -fsS "$BASE_URL/_matrix/federation/v1/version" || true)"
}

synapse_stop() {
    if [[ -n "${SYNAPSE_PID:-}" ]] && kill -0 "$SYNAPSE_PID" 2>/dev/null; then
        kill -TERM "$SYNAPSE_PID" 2>/dev/null || true
        for _ in $(seq 1 100); do
            kill -0 "$SYNAPSE_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$SYNAPSE_PID" 2>/dev/null || true
        wait "$SYNAPSE_PID" 2>/dev/null || true
    fi
}
