#!/usr/bin/env bash
# Runs "$@" with both Linux keyrings ready; meant to run inside `dbus-run-session --`:
#   dbus-run-session -- bash kms-backend-keyring/scripts/keyring-session.sh cargo nextest run ...
# 1. starts gnome-keyring-daemon (secrets component) on this D-Bus session with a throwaway
#    keyring directory and unlocks it with a throwaway password, and checks it with secret-tool;
# 2. runs "$@" inside a fresh kernel session keyring (`keyctl session -`);
# and exports KMS_TEST_SECRET_SERVICE=1 / KMS_TEST_KEYUTILS=1, which the real-keyring tests
# require (they fail, never skip, without them), and KMS_TEST_SECRET_SERVICE_PID (the daemon,
# for tests that stop it in a private session of their own). Stops the daemon afterwards.
# With KMS_KEYRING_NO_LOGIN_COLLECTION=1 the daemon starts without a login keyring (not
# unlocked, no default collection), for the test of that case; the secret-tool probe is skipped.
# With KMS_KEYRING_AUTOSTART=1 no daemon is started here: the first client call makes D-Bus
# start one from its service file (as on a machine where nobody logged in to a desktop), with
# this script's private directories; it is stopped afterwards like our own.
set -euo pipefail
if [ -z "${DBUS_SESSION_BUS_ADDRESS:-}" ]; then
    echo "keyring-session.sh: no D-Bus session; run me under dbus-run-session --" >&2
    exit 2
fi
state=$(mktemp -d "${TMPDIR:-/tmp}/kms-keyring.XXXXXX")
chmod 700 "$state"
export XDG_RUNTIME_DIR="$state/run" XDG_DATA_HOME="$state/data"
mkdir -p -m 700 "$XDG_RUNTIME_DIR" "$XDG_DATA_HOME"
# The daemon D-Bus started on a client's first call (KMS_KEYRING_AUTOSTART), if any.
autostarted_pid() {
    dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
        org.freedesktop.DBus.GetConnectionUnixProcessID string:org.freedesktop.secrets \
        2>/dev/null | awk '/uint32/ { print $2 }'
}
if [ -n "${KMS_KEYRING_AUTOSTART:-}" ]; then
    mkdir -p -m 700 "$state/home"
    # What D-Bus hands to the services it starts: our private directories, never the real ones.
    HOME="$state/home" dbus-update-activation-environment HOME XDG_RUNTIME_DIR XDG_DATA_HOME
    cleanup() {
        local pid
        pid=$(autostarted_pid)
        if [ -n "$pid" ]; then
            kill -CONT "$pid" 2>/dev/null || true
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        fi
        rm -rf "$state"
    }
    trap cleanup EXIT
    export KMS_TEST_SECRET_SERVICE=1
    keyctl session - env KMS_TEST_KEYUTILS=1 "$@"
    exit $?
fi
# Foreground mode keeps the daemon our own child, so we stop exactly the one we started.
if [ -n "${KMS_KEYRING_NO_LOGIN_COLLECTION:-}" ]; then
    gnome-keyring-daemon --foreground --components=secrets </dev/null >"$state/daemon.log" 2>&1 &
else
    printf '%s' "kms-test-$$" | gnome-keyring-daemon --foreground --unlock --components=secrets \
        >"$state/daemon.log" 2>&1 &
fi
daemon_pid=$!
cleanup() {
    kill -CONT "$daemon_pid" 2>/dev/null || true
    kill "$daemon_pid" 2>/dev/null || true
    wait "$daemon_pid" 2>/dev/null || true
    rm -rf "$state"
}
trap cleanup EXIT
# Wait until *our* daemon owns org.freedesktop.secrets. Asking with NameHasOwner never
# activates anything; a client call made earlier would make D-Bus start a second, locked
# daemon of its own, which then wants a password prompt and fails (a race seen on a busy
# machine).
owned=false
for _ in $(seq 100); do
    if dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
        org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets 2>/dev/null |
        grep -q 'boolean true'; then
        owned=true
        break
    fi
    kill -0 "$daemon_pid" 2>/dev/null || break
    sleep 0.1
done
$owned || {
    echo "keyring-session.sh: gnome-keyring-daemon did not claim the Secret Service:" >&2
    cat "$state/daemon.log" >&2
    exit 1
}
export KMS_TEST_SECRET_SERVICE_PID="$daemon_pid"
if [ -n "${KMS_KEYRING_NO_LOGIN_COLLECTION:-}" ]; then
    export KMS_TEST_SECRET_SERVICE=1
    keyctl session - env KMS_TEST_KEYUTILS=1 "$@"
    exit $?
fi
# Prove the Secret Service works before any test relies on it.
probe="probe-$$"
for _ in $(seq 50); do
    if printf 'ok' | secret-tool store --label=kms-probe kms-probe "$probe" 2>/dev/null; then break; fi
    sleep 0.1
done
[ "$(secret-tool lookup kms-probe "$probe")" = ok ] || {
    echo "keyring-session.sh: the Secret Service does not answer" >&2
    exit 1
}
secret-tool clear kms-probe "$probe"
export KMS_TEST_SECRET_SERVICE=1
keyctl session - env KMS_TEST_KEYUTILS=1 "$@"
