#!/usr/bin/env python3
"""Writes the seed corpora (fuzz/corpus/<target>/seed-*). Seeds are hand-made or taken from
real OpenBao 2.7 and moto answers; `$SECRET`, `$TOKEN` (and for some targets `$B64`,
`$FILE`) are the placeholders the targets plant canaries into. Run from fuzz/."""
import base64, json, os, pathlib

CORPUS = pathlib.Path(__file__).parent / "corpus"

def write(target, seeds):
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    for old in d.glob("seed-*"):
        old.unlink()
    for i, s in enumerate(seeds):
        data = s if isinstance(s, bytes) else s.encode()
        (d / f"seed-{i:02}").write_bytes(data)

MOUNT2 = '{"data":{"accessor":"kv_1","options":{"version":"2"},"path":"secret/","type":"kv"},"warnings":null,"auth":null}'
MOUNT1 = '{"data":{"accessor":"kv_2","options":{"version":"1"},"path":"secret/","type":"kv"},"warnings":null,"auth":null}'
LOOKUP = '{"data":{"accessor":"m70Qs5lm","id":"$TOKEN","policies":["root"],"renewable":false,"ttl":0,"type":"service"},"warnings":null,"auth":null}'
LOOKUP_RENEW = '{"data":{"accessor":"m70Qs5lm","id":"$TOKEN","policies":["default"],"renewable":true,"ttl":3600,"type":"service"},"auth":null}'
LOGIN = '{"data":null,"warnings":null,"auth":{"client_token":"$SECRET","accessor":"GLHgR5rz","policies":["default"],"lease_duration":3600,"renewable":true,"token_type":"service"}}'
READ2 = '{"data":{"data":{"value":"$SECRET"},"metadata":{"created_time":"2026-12-07T23:02:04.512904601Z","custom_metadata":null,"deletion_time":"","destroyed":false,"version":1}},"warnings":null,"auth":null}'
READ2_B64 = '{"data":{"data":{"value":"AJ+Slv8=","encoding":"base64"},"metadata":{"created_time":"2026-12-07T23:02:04Z","deletion_time":"","destroyed":false,"version":3}}}'
READ2_DOC = '{"data":{"data":{"username":"app","password":"$SECRET"},"metadata":{"created_time":"2026-12-07T23:02:04Z","version":2}}}'
READ2_DELETED = '{"data":{"data":null,"metadata":{"created_time":"2026-12-07T23:02:04Z","deletion_time":"2026-12-07T23:05:00Z","destroyed":false,"version":2}}}'
READ1 = '{"lease_duration":2764800,"data":{"value":"$SECRET"},"warnings":null,"auth":null}'
WRITE2 = '{"data":{"created_time":"2026-12-07T23:02:04.512904601Z","custom_metadata":null,"deletion_time":"","destroyed":false,"version":1},"warnings":null,"auth":null}'
META = '{"data":{"cas_required":false,"current_version":1,"max_versions":0,"oldest_version":0,"versions":{"1":{"created_time":"2026-12-07T23:02:04.512904601Z","deletion_time":"","destroyed":false}}}}'
LIST = '{"data":{"keys":["key","sub/","other"]},"warnings":null}'
HEALTH = '{"initialized":true,"sealed":false,"standby":false,"version":"2.7.2"}'
SEALED = '{"initialized":true,"sealed":true,"standby":true,"version":"2.7.2"}'
E404 = '404 {"errors":[]}'
E403 = '403 {"errors":["permission denied"]}'
E400CAS = '400 {"errors":["check-and-set parameter did not match the current version"]}'
E503 = '503 {"errors":["Vault is sealed"]}'
ELOGIN = '400 {"errors":["invalid role or secret ID"]}'
ENS = '404 {"errors":["namespace not found"]}'

vault = [
    "get\n" + "\n".join([LOOKUP, MOUNT2, READ2]),
    "get\n" + "\n".join([LOOKUP, MOUNT2, READ2_B64]),
    "get\n" + "\n".join([LOOKUP, MOUNT2, READ2_DOC]),
    "get field=password\n" + "\n".join([LOOKUP, MOUNT2, READ2_DOC]),
    "get\n" + "\n".join([LOOKUP, MOUNT2, READ2_DELETED]),
    "get\n" + "\n".join([LOOKUP, MOUNT2, E404]),
    "get\n" + "\n".join([LOOKUP, MOUNT2, E403, LOOKUP]),
    "get\n" + "\n".join([LOOKUP, MOUNT2, E403, '403 {"errors":["permission denied","invalid token"]}']),
    "get\n" + "\n".join([E503]),
    "get\n" + "\n".join([ENS]),
    "get\n" + "\n".join(["500 <html>not vault $SECRET</html>"]),
    "get\n" + "\n".join([LOOKUP, "404 page not found"]),
    "get kv1\n" + "\n".join([LOOKUP, MOUNT1, READ1]),
    "get kv1 prefix=team/\n" + "\n".join([LOOKUP, MOUNT1, READ1]),
    "get approle\n" + "\n".join([LOGIN, MOUNT2, READ2]),
    "get approle\n" + "\n".join([ELOGIN]),
    "get approle\n" + "\n".join([LOGIN, MOUNT2, E403, LOGIN, READ2]),
    "version=1\n" + "\n".join([LOOKUP, MOUNT2, READ2]),
    "version=7\n" + "\n".join([LOOKUP, MOUNT2, E404]),
    "list=\n" + "\n".join([LOOKUP, MOUNT2, LIST, LIST]),
    "list=sub/\n" + "\n".join([LOOKUP, MOUNT2, LIST]),
    "list=\n" + "\n".join([LOOKUP, MOUNT2, E404]),
    "list= kv1\n" + "\n".join([LOOKUP, MOUNT1, LIST]),
    "put\n" + "\n".join([LOOKUP, MOUNT2, WRITE2]),
    "put field=password\n" + "\n".join([LOOKUP, MOUNT2, READ2_DOC, WRITE2]),
    "put kv1\n" + "\n".join([LOOKUP, MOUNT1, "204 "]),
    "put\n" + "\n".join([LOOKUP, MOUNT2, '400 {"errors":["invalid value $SECRET"]}']),
    "cas=1\n" + "\n".join([LOOKUP, MOUNT2, WRITE2]),
    "cas=1\n" + "\n".join([LOOKUP, MOUNT2, E400CAS, META]),
    "rm\n" + "\n".join([LOOKUP, MOUNT2, META, "204 "]),
    "rm soft\n" + "\n".join([LOOKUP, MOUNT2, META, "204 "]),
    "rm\n" + "\n".join([LOOKUP, MOUNT2, E404]),
    "rm kv1\n" + "\n".join([LOOKUP, MOUNT1, READ1, "204 "]),
    "health\n" + "\n".join([HEALTH]),
    "health\n" + "\n".join(["503 " + SEALED]),
    "health\n" + "\n".join([LOOKUP_RENEW, MOUNT2, HEALTH]),
    "get\n" + "\n".join([LOOKUP_RENEW, MOUNT2, READ2]),
]
write("vault_response", vault)

SM_GET = '{"ARN":"arn:aws:secretsmanager:us-east-1:123456789012:secret:fuzz/key-AbCdEf","Name":"fuzz/key","VersionId":"e1b4f8d2-0000-4000-8000-000000000001","SecretString":"$SECRET","VersionStages":["AWSCURRENT"],"CreatedDate":1796684524.0}'
SM_GET_BIN = '{"ARN":"arn:aws:secretsmanager:us-east-1:123456789012:secret:fuzz/key-AbCdEf","Name":"fuzz/key","VersionId":"v2","SecretBinary":"' + base64.b64encode(b"$SECRET\x00\xff").decode() + '","VersionStages":["AWSCURRENT"],"CreatedDate":1796684524.0}'
SM_PUT = '{"ARN":"arn:aws:secretsmanager:us-east-1:123456789012:secret:fuzz/key-AbCdEf","Name":"fuzz/key","VersionId":"v3","VersionStages":["AWSCURRENT"]}'
SM_LIST = '{"SecretList":[{"ARN":"arn:x","Name":"fuzz/key","LastChangedDate":1796684524.0},{"ARN":"arn:y","Name":"fuzz/other"}],"NextToken":null}'
SM_LIST_PAGE = '{"SecretList":[{"ARN":"arn:x","Name":"fuzz/a"}],"NextToken":"page2"}'
SM_DESCRIBE = '{"ARN":"arn:x","Name":"fuzz/key","VersionIdsToStages":{"v1":["AWSCURRENT"],"v0":["AWSPREVIOUS"]},"DeletedDate":null}'
SM_DELETE = '{"ARN":"arn:x","Name":"fuzz/key","DeletionDate":1796684524.0}'
def err(status, code, msg):
    return f'{status} x-amzn-ErrorType:{code} {{"__type":"{code}","Message":"{msg}"}}'
NOTFOUND = err(400, "ResourceNotFoundException", "Secrets Manager can't find the specified secret.")
DELETED = err(400, "InvalidRequestException", "You can't perform this operation on the secret because it was marked for deletion.")
DENIED = err(400, "AccessDeniedException", "User is not authorized to perform secretsmanager:GetSecretValue")
THROTTLE = err(400, "ThrottlingException", "Rate exceeded")
EXISTS = err(400, "ResourceExistsException", "The operation failed because the secret fuzz/key already exists.")
TOKEN_USED = err(400, "ResourceExistsException", "You can't use ClientRequestToken abc because that value is already in use for a version of secret fuzz/key.")
BADSIG = err(403, "UnrecognizedClientException", "The security token included in the request is invalid.")
aws = [
    "get\n" + SM_GET,
    "get\n" + SM_GET_BIN,
    "get\n" + NOTFOUND,
    "get\n" + DELETED,
    "get\n" + DENIED,
    "get\n" + THROTTLE,
    "get\n" + BADSIG,
    "get\n" + err(400, "DecryptionFailure", "Secrets Manager can't decrypt the protected secret text using the provided KMS key."),
    "get\n500 {\"__type\":\"InternalServiceError\",\"message\":\"oops\"}",
    "get\n502 <html>bad gateway $SECRET</html>",
    "get\n" + '400 {"__type":"com.amazonaws.secretsmanager#ValidationException:http://internal","Message":"1 validation error"}',
    "version=v1\n" + SM_GET,
    "version=v1\n" + NOTFOUND,
    "stage=AWSPREVIOUS\n" + SM_GET,
    "stage=AWSPENDING\n" + NOTFOUND,
    "list=\n" + SM_LIST,
    "list=fuzz/\n" + SM_LIST_PAGE + "\n" + SM_LIST,
    "list=\n" + DENIED,
    "put\n" + SM_PUT,
    "put\n" + NOTFOUND + "\n" + SM_PUT,
    "put\n" + NOTFOUND + "\n" + EXISTS + "\n" + SM_PUT,
    "put\n" + TOKEN_USED,
    "put\n" + DELETED,
    "cas=v1\n" + SM_DESCRIBE + "\n" + SM_PUT,
    "cas=v9\n" + SM_DESCRIBE,
    "rm\n" + SM_DELETE,
    "rm\n" + NOTFOUND,
    "health\n" + SM_LIST,
    "health\n" + BADSIG,
]
write("aws_response", aws)

write("key_name", [
    "app/db/password\napp/", "a\n", "db@prod\ndb", "api+key\napi+", "team=payments/key\nteam=payments/k",
    "user@example.com/token\nuser@", "...\n..", ".hidden/x\n.hidden/", "a/..b\na/", "../../sys/policy/root\n../",
    "/abs\n/", "dir/\ndir/", "a//b\na//", "a\x00b\na", "with space\nwith", "caf\u00e9\ncaf",
    "a" * 256 + "\n" + "a" * 256, "a" * 257 + "\n", "a/./b\na/.", "x:y\nx:",
])
write("json_field", [
    'password\n{"username":"app","password":"$SECRET","port":5432}',
    'port\n{"username":"app","password":"$SECRET","port":5432}',
    'host\n{"username":"app","password":"$SECRET"}',
    'p\n{"p":"s3cr\\"et $SECRET","p":"last"}',
    'nested\n{"nested":{"a":[1,2,"$SECRET"]},"n":null}',
    'x\n"$SECRET"', 'x\n[1,"$SECRET"]', 'x\n$SECRET', 'x\n{"x":1e400}', 'x\n{"x":"\\ud800"}',
    'x\n{"a":"$SECRET","b":"$SECRET","c":1,"d":2,"e":3,"f":4,"g":5,"h":6,"i":7,"j":8}',
])
write("secret_ref", [
    "env:KMS_FUZZ_REF", "env:VAULT_TOKEN", "env:", "env:1BAD", "env:$SECRET", "file:$FILE", "file://$FILE",
    "file:relative/path", "file://host/x", "file:", "$SECRET", "hvs.$TOKEN", "ENV:$SECRET", " env:X",
    "https://$SECRET@host", "vault:secret/$SECRET", "-----BEGIN PRIVATE KEY-----\n$SECRET\n-----END PRIVATE KEY-----",
    "", "a:b$SECRET", "8f14e45f-ceea-467f-a9f2-$SECRET",
])
write("uri", [
    "memory://", "memory://?max_versions=3&cache.ttl=5m",
    "memory://?envelope.provider=local&envelope.master_key=" + base64.b64encode(b"k" * 32).decode(),
    "memory://?envelope.provider=local&envelope.master_key=$SECRET",
    "memory://?envelope.provider=local&envelope.master_key=env:KMS_FUZZ_MISSING",
    "memory://?validate.max_value_len=4&retry.max_retries=2&timeout.attempt=1s&breaker.failure_threshold=3",
    "memory://?metrics.enabled=true&cache.ttl=1m&cache.stale_if_error=5m",
    "vault+https://vault.example:8200/secret?auth.token=$TOKEN&cache.ttl=5m",
    "vault+https://vault.example:8200/secret?auth.method=approle&auth.role_id=$TOKEN&auth.secret_id=$SECRET",
    "vault+http://u:$SECRET@127.0.0.1:8200/secret", "vault://h/secret?auth.token=$TOKEN&auth.token=$SECRET",
    "vault://h/secret?auth.token=%zz$SECRET", "vault://h/secret?auth.token=%ff%fe$SECRET",
    "vault://h/secret?bogus=1&auth.token=$TOKEN", "vault://h/secret?auth.token=$TOKEN#frag$SECRET",
    "aws-sm://us-east-1/team?access_key_id=AKID&secret_access_key=$SECRET&session_token=$TOKEN",
    "aws-sm://?endpoint_url=http://127.0.0.1:5000&secret_access_key=$SECRET",
    "keyring://payments?scope=session", "ftp://$SECRET", "not a uri $SECRET", "vault+https://[::1:8200/?auth.token=$TOKEN",
])
cfg = '''default = "payments"

[stores.payments]
uri = "vault+https://vault.example:8200/secret/payments?auth.token=$TOKEN"

[stores.payments.cache]
ttl = "5m"

[stores.signing.memory]
'''
write("config", [
    cfg,
    cfg + "---\nKMS_STORES__PAYMENTS__CACHE__TTL=10m\n",
    '[stores.v.vault]\naddress = "https://vault.example:8200"\n[stores.v.vault.auth]\ntoken = "$TOKEN"\n',
    '[stores.v.vault]\naddress = "https://vault.example:8200"\n[stores.v.vault.auth]\nmethod = "approle"\nrole_id = "$TOKEN"\nsecret_id = "$SECRET"\n',
    '[stores.a.aws]\nregion = "us-east-1"\naccess_key_id = "AKID"\nsecret_access_key = "$SECRET"\nsession_token = "$TOKEN"\n',
    '[stores.m.memory]\n[stores.m.envelope]\nprovider = "local"\nmaster_key = "$SECRET"\n',
    '[stores.m.memory]\n---\nKMS_STORES__M__ENVELOPE__PROVIDER=local\nKMS_STORES__M__ENVELOPE__MASTER_KEY=$SECRET\n',
    '---\nKMS_STORES__V__URI=vault://h/secret?auth.token=$TOKEN\nKMS_DEFAULT=v\n',
    '---\nKMS_STORES__V__VAULT__AUTH__TOKEN=$TOKEN\nKMS_CACHE_TTL=5m\n',
    '[stores.v.vault.auth]\ntoken = "$TOKEN\n',
    '[stores.v.vault.auth]\ntoken = $SECRET\n',
    '[stores.v.vault.auth]\ntoken = 12345\n',
    '[stores.v.vault]\naddress = "https://h"\nunknown = "x"\n[stores.v.vault.auth]\ntoken = "$TOKEN"\n',
    '[stores.v]\nuri = "vault://h/secret?auth.token=%zz$SECRET"\n',
    'default = "nope"\n[stores.m.memory]\n',
    '[stores.m.memory]\nmax_versions = 0\n[stores.m.cache]\nttl = "forever"\n',
])
shard = lambda names, n=None: json.dumps(({"v": 1, "shards": n} if n else {"v": 1}) | {"names": names})
write("keyring_index", [
    shard([]), shard(["a", "b/c"]), shard(["a"], 1), shard(["x"], 3), shard(["a"], 0), shard(["a"], 2000),
    shard(["../x"]), shard([1]), '{"v":2,"names":[]}', '{"names":[]}', '{"v":1}', "not json", '{"v":1,"names":["a","a"]}',
])
b64 = lambda b: base64.b64encode(b).decode()
write("bundle", [
    json.dumps({"format": "kms-bundle", "version": 1, "keys": [{"name": "a/one", "value_base64": "$B64"}, {"name": "a/two", "value_base64": b64(b"\x00\xff\n")}]}),
    json.dumps({"format": "kms-bundle", "version": 1, "keys": []}),
    json.dumps({"format": "kms-bundle", "version": 2, "keys": []}),
    json.dumps({"format": "other", "version": 1, "keys": []}),
    json.dumps({"format": "kms-bundle", "version": 1, "keys": [{"name": "a", "value_base64": "***$SECRET"}]}),
    json.dumps({"format": "kms-bundle", "version": 1, "keys": [{"name": "/bad", "value_base64": "$B64"}]}),
    json.dumps({"format": "kms-bundle", "version": 1, "keys": [{"name": "a", "value_base64": "$B64", "extra": "$SECRET"}]}),
    '{"format":"kms-bundle","version":1,"keys":[{"name":"a","value_base64":"$B64"}',
    "age-encryption.org/v1\n-> X25519 abc\nAAAA\n--- xyz\n$SECRET",
    "age-encryption.org/v1\n-> scrypt c2FsdA 10\nAAAA\n--- xyz\n",
    "not json $SECRET",
])
write("agent_request", [
    "/secretsmanager/get?secretId=MyTest&versionStage=AWSCURRENT\n$TOKEN\n",
    "/secretsmanager/get?secretId=MyTest&refreshNow=true\nwrong\n",
    "/secretsmanager/get?secretId=a&roleArn=arn:aws:iam::123456789012:role/r\n\n",
    "/secretsmanager/get?secretId=a&roleArn=$SECRET\n\n",
    "/secretsmanager/get?secretId=a&refreshNow=$SECRET\n\n",
    "/secretsmanager/get?bogus=$SECRET\n\n",
    "/secretsmanager/get\n\n",
    "/v1/MyTest?versionId=abc\n$TOKEN\n",
    "/v1/\n\n", "/v1/a%2Fb?secretId=x\n\n", "/kms/v1/stores/vault/secrets/app/db\n\n", "/ping\n\n",
    "/secretsmanager/get?secretId=x\n$TOKEN\n[agent]\nlisten = \"127.0.0.1:2773\"\n[stores.m.memory]\n",
    "/ping\n\n[capabilities.secrets_manager]\nttl_seconds = 300\n[stores.v.vault.auth]\ntoken = \"$TOKEN\"\n",
    "/ping\n\n[capabilities.acm]\nx = 1\n", "/ping\n\n[stores.v.vault.auth]\ntoken = \"$TOKEN\n",
    "/ping\n\nbogus = \"$SECRET\"\n",
])
envelope = [b"\x00KMSE\x01\x01\x00\x04abcd" + b"\x00" * 12 + b"\x11" * 20, b"\x00", b"\x00not an envelope",
            b"\x01hello", b"\x01", b"\x01" + bytes(range(256)), b"\x02\x00\x05\x01value", b"\x02\x00\x00\x00value",
            b"\x02\xff\xff\x80value", b"\x02\x00\x08\x00x"]
write("envelope", envelope)
