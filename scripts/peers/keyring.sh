# The Linux keyrings for kms-backend-keyring's tests (sourced by scripts/test).
# Wraps the test run in a D-Bus session with an unlocked gnome-keyring-daemon and a fresh kernel
# session keyring (see kms-backend-keyring/scripts/keyring-session.sh). Nothing listens on the
# network: the daemon talks over the private session bus, the kernel keyring is a syscall.
# passwd/util-linux: useradd/userdel and setpriv, for the kernel quota test (a throwaway
# non-root user, deleted by the test).
APT_PACKAGES+=(keyutils dbus dbus-bin gnome-keyring libsecret-tools passwd util-linux)
PEERS+=(keyring)
TEST_WRAPPERS+=(dbus-run-session -- bash "$ROOT/kms-backend-keyring/scripts/keyring-session.sh")
