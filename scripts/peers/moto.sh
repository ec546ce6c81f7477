# moto server for kms-backend-aws's tests (sourced by scripts/test): an emulator that speaks
# the real AWS Secrets Manager and KMS protocols, on 127.0.0.1 only, state in memory.
# It is reset once when the run starts (POST /moto-api/reset). Tests do not reset it between
# cases: they run in parallel processes, each under unique names, so a reset would wipe the
# data of the tests running beside it.
APT_PACKAGES+=(curl)
PIP_PACKAGES+=("moto[server]==5.2.5")
PEERS+=(moto)

MOTO_PORT=${MOTO_PORT:-5000}

moto_start() {
    local url="http://127.0.0.1:${MOTO_PORT}"
    if ! curl -fsS "$url/moto-api/" >/dev/null 2>&1; then
        moto_server -H 127.0.0.1 -p "$MOTO_PORT" >"$KMS_TOOLS/moto.log" 2>&1 &
        echo $! >"$KMS_TOOLS/moto.pid"
        wait_for "curl -fsS $url/moto-api/" 60 || return 1
    fi
    curl -fsS -X POST "$url/moto-api/reset" >/dev/null
    export KMS_TEST_AWS_ENDPOINT="$url"
}

moto_stop() {
    stop_pidfile "$KMS_TOOLS/moto.pid"
}
