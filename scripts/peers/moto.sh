# moto server for kms-backend-aws's tests (sourced by scripts/test): an emulator that speaks
# the real AWS Secrets Manager and KMS protocols, on 127.0.0.1 only, state in memory.
# It runs through scripts/peers/moto_server.py: moto's own app served single-threaded (moto's
# backends are not thread-safe: concurrent writes answered 500 "dictionary changed size during
# iteration"), with PutSecretValue on a secret scheduled for deletion refused as AWS does, and
# UpdateSecretVersionStage moving AWSCURRENT making that version current, as AWS does.
# It is reset once when the run starts (POST /moto-api/reset). Tests do not reset it between
# cases: they run in parallel processes, each under unique names, so a reset would wipe the
# data of the tests running beside it.
APT_PACKAGES+=(curl)
PIP_PACKAGES+=("moto[server]==5.2.5")
PEERS+=(moto)

MOTO_PORT=${MOTO_PORT:-5000}
MOTO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# The pid file of the server on $MOTO_PORT (moto.pid for the default port, as before).
moto_pidfile() {
    if [ "$MOTO_PORT" = 5000 ]; then
        echo "$KMS_TOOLS/moto.pid"
    else
        echo "$KMS_TOOLS/moto-$MOTO_PORT.pid"
    fi
}

moto_start() {
    local url="http://127.0.0.1:${MOTO_PORT}" pidfile
    pidfile=$(moto_pidfile)
    if curl -fsS "$url/moto-api/" >/dev/null 2>&1 &&
        [ "$(curl -fsS "$url/kms-test-peer" 2>/dev/null)" != "moto-single-threaded 2" ]; then
        # A plain (threaded) moto_server: replace it if an earlier run of this script started
        # it, else say whose it is not.
        if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
            stop_pidfile "$pidfile"
        else
            echo "a server that is not scripts/peers/moto_server.py answers on $url; stop it" >&2
            return 1
        fi
    fi
    if ! curl -fsS "$url/moto-api/" >/dev/null 2>&1; then
        "$KMS_TOOLS/venv/bin/python" "$MOTO_DIR/moto_server.py" 127.0.0.1 "$MOTO_PORT" \
            >"$KMS_TOOLS/moto-$MOTO_PORT.log" 2>&1 &
        echo $! >"$pidfile"
        wait_for "curl -fsS $url/kms-test-peer" 60 || return 1
    fi
    curl -fsS -X POST "$url/moto-api/reset" >/dev/null
    export KMS_TEST_AWS_ENDPOINT="$url"
}

moto_stop() {
    stop_pidfile "$(moto_pidfile)"
}
