# NATS server with JetStream for kms-fleet's tests (sourced by scripts/test): one node on
# 127.0.0.1:4222 (store in $KMS_TOOLS/nats-4222, wiped at start so each run begins with no
# streams). The fault tests start and kill their own three-node cluster on 127.0.0.1 ports
# 4230-4259 (clients) and 6230-6259 (cluster routes), with store directories in a temporary
# directory; they find the binary through KMS_TEST_NATS_SERVER.
APT_PACKAGES+=(nats-server)
PEERS+=(nats)

NATS_PORT=${NATS_PORT:-4222}

nats_start() {
    local pidfile="$KMS_TOOLS/nats-$NATS_PORT.pid" store="$KMS_TOOLS/nats-$NATS_PORT" bin
    bin=$(command -v nats-server || echo /usr/sbin/nats-server)
    export KMS_TEST_NATS_SERVER="$bin"
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$NATS_PORT") 2>/dev/null; then
        rm -rf "$store" && mkdir -p "$store"
        "$bin" -a 127.0.0.1 -p "$NATS_PORT" -js -sd "$store" >"$KMS_TOOLS/nats-$NATS_PORT.log" 2>&1 &
        echo $! >"$pidfile"
        wait_for "(exec 3<>/dev/tcp/127.0.0.1/$NATS_PORT)" 30 || return 1
    fi
    export KMS_TEST_NATS_URL="nats://127.0.0.1:$NATS_PORT"
}

nats_stop() {
    stop_pidfile "$KMS_TOOLS/nats-$NATS_PORT.pid"
}
