"""moto for kms's tests (started by scripts/peers/moto.sh): moto's own server, but
single-threaded, and with two deviations from AWS corrected.

Usage: python moto_server.py HOST PORT

- Single-threaded. `moto_server` serves each request on its own thread (werkzeug
  `run_simple(..., threaded=True)`), but moto's in-memory backends are plain dicts without
  locks: concurrent writes fail with `RuntimeError: dictionary changed size during iteration`
  and answer 500, which makes parallel tests flaky. Here `run_simple(..., threaded=False)`
  serves one request at a time, with moto's own WSGI app and request handler (as
  moto/server.py builds them in moto 5.2.5).
- PutSecretValue on a secret scheduled for deletion is refused, as AWS does
  (InvalidRequestException, "You can't perform this operation on the secret because it was
  marked for deletion."). moto 5.2.5 accepts the write and leaves the secret deleted, so the
  value is silently lost; every other Secrets Manager operation on such a secret is refused by
  moto already.
- UpdateSecretVersionStage moving AWSCURRENT makes the version it moves to the secret's
  current one, as AWS does. moto 5.2.5 moves the label but keeps its own record of the
  current version, so the next PutSecretValue labels the old version AWSPREVIOUS and leaves
  AWSCURRENT on two versions (a check-and-set's version then hides every later write).
- GET /kms-test-peer answers "moto-single-threaded 2", so moto.sh can tell this server from a
  plain `moto_server` left running on the port.
"""

import sys

from werkzeug.serving import run_simple

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from moto.secretsmanager.exceptions import InvalidRequestException
from moto.secretsmanager.models import SecretsManagerBackend

MARKER = b"moto-single-threaded 2"

_put_secret_value = SecretsManagerBackend.put_secret_value


def put_secret_value(self, secret_id, *args, **kwargs):
    if self._is_valid_identifier(secret_id) and self.secrets[secret_id].is_deleted():
        raise InvalidRequestException(
            "You can't perform this operation on the secret because it was marked for deletion."
        )
    return _put_secret_value(self, secret_id, *args, **kwargs)


SecretsManagerBackend.put_secret_value = put_secret_value

_update_secret_version_stage = SecretsManagerBackend.update_secret_version_stage


def update_secret_version_stage(
    self, secret_id, version_stage, remove_from_version_id, move_to_version_id
):
    answer = _update_secret_version_stage(
        self, secret_id, version_stage, remove_from_version_id, move_to_version_id
    )
    if version_stage == "AWSCURRENT" and move_to_version_id:
        self.secrets[secret_id].set_default_version_id(move_to_version_id)
    return answer


SecretsManagerBackend.update_secret_version_stage = update_secret_version_stage


def with_marker(app):
    def wrapped(environ, start_response):
        if environ.get("PATH_INFO") == "/kms-test-peer":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [MARKER]
        return app(environ, start_response)

    return wrapped


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(
        host,
        port,
        with_marker(app),
        threaded=False,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
