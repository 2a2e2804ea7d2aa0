#!/bin/sh
# The container's entrypoint (Synapse's image works the same way):
#   generate  write $GLIA_CONFIG_PATH and the signing key from GLIA_SERVER_NAME, then exit
#   serve     (default) generate first if $GLIA_CONFIG_PATH is missing, then serve it
#   anything else is run as a command (e.g. `glia register-user ...`, `sh`).
# Variables: GLIA_SERVER_NAME (needed to generate), GLIA_DATA_DIR (/data),
# GLIA_CONFIG_PATH ($GLIA_DATA_DIR/homeserver.yaml), GLIA_HTTP_PORT, GLIA_BIND_ADDRESSES,
# GLIA_REPORT_STATS (accepted and ignored: Glia sends no statistics), GLIA_BIN (glia).
set -eu

GLIA_DATA_DIR="${GLIA_DATA_DIR:-/data}"
GLIA_CONFIG_PATH="${GLIA_CONFIG_PATH:-$GLIA_DATA_DIR/homeserver.yaml}"
GLIA_BIN="${GLIA_BIN:-glia}"
export GLIA_DATA_DIR GLIA_CONFIG_PATH

generate() {
    if [ -z "${GLIA_SERVER_NAME:-}" ]; then
        echo "entrypoint: $GLIA_CONFIG_PATH does not exist and GLIA_SERVER_NAME is not set;" >&2
        echo "entrypoint: set GLIA_SERVER_NAME=your.domain to generate a config" >&2
        exit 1
    fi
    "$GLIA_BIN" generate
}

cmd="${1:-serve}"
case "$cmd" in
    generate)
        generate
        ;;
    serve)
        if [ ! -f "$GLIA_CONFIG_PATH" ]; then
            echo "entrypoint: no $GLIA_CONFIG_PATH yet: generating it for ${GLIA_SERVER_NAME:-?}" >&2
            generate
        fi
        exec "$GLIA_BIN" serve -c "$GLIA_CONFIG_PATH"
        ;;
    *)
        exec "$@"
        ;;
esac
