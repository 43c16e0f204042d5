"""API keys: 401 and 403 problems, scopes, the key id (never the key) in provenance and
logs, the keys file, `vellum keys`, and the bind rule once keys are configured."""

from __future__ import annotations

import asyncio
import io
import json
import re
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import msgspec
import pytest

import service.keys
from service.app import create_app
from service.commands import check_bind
from service.config import Config
from service.errors import ConfigError
from service.jobs import model
from service.keys import Keyring, KeysFile, create_key, load_keys, revoke_key
from service.storage.s3 import S3Settings
from service.web.openapi import build
from tests.conftest import all_keys
from tests.servers import running_server, s3_environment
from tests.test_server import run_cli

NDJSON = {"Content-Type": "application/x-ndjson"}
OPEN_PATHS = ("/healthz", "/readyz", "/metrics", "/openapi.json")


class Keys(msgspec.Struct):
    path: Path
    ingest: str
    read: str
    admin: str

    def id(self, key: str) -> str:
        return key.split("_")[1]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def secret(key: str) -> str:
    return key.split("_", 2)[2]


@pytest.fixture
def keys(tmp_path: Path) -> Keys:
    path = tmp_path / "keys.jsonl"
    made = {scope: create_key(path, [scope])[0] for scope in ("ingest", "read", "admin")}
    return Keys(path, made["ingest"], made["read"], made["admin"])


@pytest.fixture
async def authed(make_client, store, config: Config, keys: Keys):  # type: ignore[no-untyped-def]
    return await make_client(store, msgspec.structs.replace(config, keys_file=keys.path))


async def post_article(client, key: str, text: str = "An archived article.") -> Any:  # type: ignore[no-untyped-def]
    return await client.post("/v1/documents", json={"text": text}, headers=bearer(key))


async def test_no_key_is_401_with_a_bearer_challenge_and_nothing_stored(authed, store) -> None:
    response = await authed.post("/v1/documents", json={"text": "Not without a key."})
    assert response.status == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="vellum"'
    assert response.content_type == "application/problem+json"
    problem = await response.json()
    assert problem["type"] == "/problems/unauthorized"
    assert problem["request_id"] == response.headers["X-Request-ID"]
    assert (await authed.get(f"/v1/documents/{'a' * 32}")).status == 401
    assert (await authed.head(f"/v1/documents/{'a' * 32}")).status == 401
    basic = await authed.get("/v1/imports/x", headers={"Authorization": "Basic dXNlcjpwdw=="})
    assert basic.status == 401
    assert basic.headers["WWW-Authenticate"] == 'Bearer realm="vellum"'
    assert await all_keys(store) == []


@pytest.mark.parametrize("kind", ["wrong secret", "unknown id", "malformed", "empty secret"])
async def test_a_bad_key_is_401_invalid_token(authed, keys: Keys, kind: str) -> None:
    key = keys.admin
    token = {
        "wrong secret": key[:-4] + ("aaaa" if not key.endswith("aaaa") else "bbbb"),
        "unknown id": f"vk_zzzzzzzz_{secret(key)}",
        "malformed": key + "!",
        "empty secret": f"vk_{keys.id(key)}_",
    }[kind]
    response = await post_article(authed, token)
    assert response.status == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="vellum", error="invalid_token"'
    assert (await response.json())["type"] == "/problems/unauthorized"


async def test_a_key_without_the_routes_scope_is_403_naming_it(authed, keys: Keys) -> None:
    response = await post_article(authed, keys.read)
    assert response.status == 403
    problem = await response.json()
    assert problem["type"] == "/problems/forbidden"
    assert problem["required_scope"] == "ingest"
    assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]

    created = await post_article(authed, keys.ingest)
    document = (await created.json())["links"]["self"]
    refused = await authed.get(document, headers=bearer(keys.ingest))
    assert refused.status == 403
    assert (await refused.json())["required_scope"] == "read"

    job = await authed.post("/v1/imports", data=b"", headers={**NDJSON, **bearer(keys.ingest)})
    location = (await job.json())["links"]["self"]
    cancel = await authed.delete(location, headers=bearer(keys.ingest))
    assert cancel.status == 403
    assert (await cancel.json())["required_scope"] == "admin"


async def test_the_right_scope_gets_through_and_admin_implies_the_others(
    authed, keys: Keys
) -> None:
    created = await post_article(authed, keys.ingest, "Written with an ingest key.")
    assert created.status == 201
    document = (await created.json())["links"]["self"]
    for key in (keys.read, keys.admin):
        assert (await authed.get(document, headers=bearer(key))).status == 200
        assert (await authed.get(f"{document}/original", headers=bearer(key))).status == 200
    assert (await post_article(authed, keys.admin, "Written by admin.")).status == 201
    job = await authed.post("/v1/imports", data=b"", headers={**NDJSON, **bearer(keys.admin)})
    assert job.status == 202
    location = (await job.json())["links"]["self"]
    assert (await authed.get(location, headers=bearer(keys.read))).status == 200
    assert (await authed.delete(location, headers=bearer(keys.admin))).status == 202


async def test_health_metrics_and_the_contract_stay_open(authed) -> None:
    for path in OPEN_PATHS:
        response = await authed.get(path)
        assert response.status == 200, path
    # Unknown paths and methods keep their own answers.
    assert (await authed.get("/nowhere")).status == 404
    assert (await authed.put("/v1/documents")).status == 405


async def test_the_key_id_goes_into_provenance_and_the_log_line_never_the_key(
    authed, keys: Keys, log_stream: io.StringIO
) -> None:
    created = await post_article(authed, keys.ingest, "Provenance names the key id.")
    assert created.status == 201
    document = (await created.json())["links"]["self"]
    record = await authed.get(document, headers={**bearer(keys.read), "X-Request-ID": "r-2"})
    stored = await record.read()
    assert json.loads(stored)["provenance"]["submitter"] == keys.id(keys.ingest)
    prov = await (await authed.get(f"{document}/provenance", headers=bearer(keys.read))).read()
    assert keys.id(keys.ingest).encode() in prov

    output = log_stream.getvalue()
    requests = [json.loads(line) for line in output.splitlines()]
    requests = [event for event in requests if event["event"] == "request"]
    assert [event["key_id"] for event in requests] == [
        keys.id(keys.ingest),
        keys.id(keys.read),
        keys.id(keys.read),
    ]
    for key in (keys.ingest, keys.read):
        assert secret(key) not in output
        assert secret(key).encode() not in stored + prov


async def test_an_import_records_its_submitter(authed, keys: Keys) -> None:
    body = b'{"text": "Imported with an ingest key."}\n{"text": "And a second line."}\n'
    job = await authed.post("/v1/imports", data=body, headers={**NDJSON, **bearer(keys.ingest)})
    location = (await job.json())["links"]["self"]
    async with asyncio.timeout(60):
        while True:
            status = await (await authed.get(location, headers=bearer(keys.read))).json()
            if status["state"] in model.TERMINAL:
                break
            await asyncio.sleep(0.2)
    assert (status["state"], status["created"]) == ("succeeded", 2)
    results = await authed.get(f"{location}/results", headers=bearer(keys.read))
    for line in (await results.read()).splitlines():
        document = f"/v1/documents/{json.loads(line)['id']}"
        record = await (await authed.get(document, headers=bearer(keys.read))).json()
        assert record["provenance"]["submitter"] == keys.id(keys.ingest)
        assert record["provenance"]["channel"] == "import"


def test_the_keys_file_holds_hashes_not_keys(keys: Keys) -> None:
    text = keys.path.read_text()
    assert keys.path.stat().st_mode & 0o777 == 0o600
    lines = [json.loads(line) for line in text.splitlines()]
    assert [line["id"] for line in lines] == [
        keys.id(k) for k in (keys.ingest, keys.read, keys.admin)
    ]
    for key in (keys.ingest, keys.read, keys.admin):
        assert secret(key) not in text
    assert {(line["kdf"], line["n"], line["r"], line["p"]) for line in lines} == {
        ("scrypt", 2**14, 8, 1)
    }
    assert len({line["salt"] for line in lines}) == 3  # a salt of its own per key


def test_verified_keys_are_cached_by_digest_not_by_key(keys: Keys) -> None:
    keyring: Keyring = load_keys(keys.path)
    assert keyring.cached(keys.read) is None
    entry = keyring.verify(keys.read)
    assert entry is not None
    assert entry.scopes == ("read",)
    assert keyring.cached(keys.read) == entry
    wrong = keys.read[:-1] + ("2" if keys.read[-1] != "2" else "3")
    assert keyring.verify(wrong) is None
    assert all(secret(keys.read) not in repr(item) for item in keyring._verified.items())


@pytest.mark.integration  # runs `vellum` as a process
async def test_vellum_keys_create_prints_a_working_key_once(
    tmp_path: Path, make_client, store, config: Config
) -> None:
    path = tmp_path / "made-by-cli.jsonl"
    made = run_cli("keys", "create", "--scope", "ingest", "--keys-file", str(path))
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert key.startswith("vk_")
    assert len(made.stdout.splitlines()) == 1
    assert secret(key) not in path.read_text()
    listed = run_cli("keys", "list", env={"VELLUM_KEYS_FILE": str(path)})
    assert listed.returncode == 0, listed.stderr
    assert key.split("_")[1] in listed.stdout
    assert "ingest" in listed.stdout
    assert secret(key) not in listed.stdout + listed.stderr

    client = await make_client(store, msgspec.structs.replace(config, keys_file=path))
    assert (await post_article(client, key)).status == 201
    assert (await post_article(client, key + "x")).status == 401


async def test_keys_revoked_or_added_take_effect_without_a_restart(
    authed, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service.keys, "RELOAD_SECONDS", 0.0)  # look at the file every time
    assert (await post_article(authed, keys.ingest, "before")).status == 201
    revoke_key(keys.path, keys.id(keys.ingest))
    assert (await post_article(authed, keys.ingest, "after")).status == 401
    added, _ = create_key(keys.path, ["ingest"])
    assert (await post_article(authed, added, "added")).status == 201
    assert (await post_article(authed, keys.admin, "others kept")).status == 201


async def test_a_keys_file_that_does_not_load_leaves_the_keys_in_use(
    authed, keys: Keys, monkeypatch: pytest.MonkeyPatch, log_stream: io.StringIO
) -> None:
    monkeypatch.setattr(service.keys, "RELOAD_SECONDS", 0.0)
    keys.path.write_text("half a line of JSON {\n")  # as an editor might leave it
    assert (await post_article(authed, keys.ingest, "still")).status == 201
    assert "keys_reload_failed" in log_stream.getvalue()


def test_keys_file_is_looked_at_no_more_than_once_a_second(keys: Keys) -> None:
    now = [100.0]
    watched = KeysFile(keys.path, clock=lambda: now[0])
    revoke_key(keys.path, keys.id(keys.read))
    now[0] += 0.5
    assert keys.id(keys.read) in watched.keyring().entries
    now[0] += 0.6
    assert keys.id(keys.read) not in watched.keyring().entries


@pytest.mark.integration  # runs `vellum` as a process
def test_vellum_keys_revoke_removes_the_key_and_names_unknown_ids(keys: Keys) -> None:
    revoked = run_cli("keys", "revoke", keys.id(keys.read), "--keys-file", str(keys.path))
    assert revoked.returncode == 0, revoked.stderr
    assert keys.path.stat().st_mode & 0o777 == 0o600
    listed = run_cli("keys", "list", "--keys-file", str(keys.path)).stdout
    assert keys.id(keys.read) not in listed
    assert keys.id(keys.ingest) in listed
    assert keys.id(keys.admin) in listed
    unknown = run_cli("keys", "revoke", "zzzzzzzz", "--keys-file", str(keys.path))
    assert unknown.returncode == 2
    assert "no key zzzzzzzz" in unknown.stderr


async def test_wrong_secrets_for_a_known_key_id_get_429_without_scrypt(
    authed, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Key ids are public; each wrong secret would cost a scrypt run (CPU) if unbounded."""
    monkeypatch.setattr(service.keys, "FAILURES_ALLOWED", 3)
    runs = []
    matches = service.keys.KeyEntry.matches
    monkeypatch.setattr(
        service.keys.KeyEntry, "matches", lambda entry, s: runs.append(1) or matches(entry, s)
    )
    assert (await post_article(authed, keys.ingest, "verified before")).status == 201
    wrong = f"vk_{keys.id(keys.ingest)}_{'a' * 52}"
    for _ in range(3):
        assert (await post_article(authed, wrong)).status == 401
    assert len(runs) == 4
    refused = await post_article(authed, wrong)
    assert refused.status == 429
    assert 0 < int(refused.headers["Retry-After"]) <= 60
    problem = await refused.json()
    assert problem["type"] == "/problems/too-many-attempts"
    assert problem["retry_after_seconds"] == int(refused.headers["Retry-After"])
    assert len(runs) == 4  # no scrypt for the refused attempt
    # The key's holder, verified before, is not locked out; other keys are unaffected.
    assert (await post_article(authed, keys.ingest, "still works")).status == 201
    assert (await post_article(authed, keys.admin, "admin too")).status == 201


def test_a_reload_keeps_verified_tokens_of_unchanged_keys(keys: Keys) -> None:
    now = [0.0]
    watched = KeysFile(keys.path, clock=lambda: now[0])
    assert watched.keyring().verify(keys.read) is not None
    create_key(keys.path, ["ingest"])
    now[0] += 2
    reloaded = watched.keyring()
    assert len(reloaded) == 4
    assert reloaded.cached(keys.read) is not None  # no second scrypt after the reload


def test_a_missing_keys_file_is_a_start_up_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="VELLUM_KEYS_FILE"):
        load_keys(tmp_path / "absent.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x"}\n')
    with pytest.raises(ConfigError, match="line 1"):
        load_keys(bad)


def test_with_keys_a_public_bind_is_allowed(keys: Keys) -> None:
    check_bind(Config(host="0.0.0.0", keys_file=keys.path))
    check_bind(Config(host="0.0.0.0", allow_public_without_keys=True))
    with pytest.raises(ConfigError, match=r"refusing to bind 0\.0\.0\.0"):
        check_bind(Config(host="0.0.0.0"))


def test_serve_on_a_public_address_with_keys_requires_them(
    tmp_path: Path, s3_settings: S3Settings, keys: Keys
) -> None:
    env = {**s3_environment(s3_settings), "VELLUM_KEYS_FILE": str(keys.path)}
    with running_server(tmp_path, env, "--host", "0.0.0.0") as server:
        output = server.output()
        assert "Auth: on, 3 API keys loaded" in output
        for key in (keys.ingest, keys.read, keys.admin):
            assert secret(key) not in output
        request = urllib.request.Request(f"{server.url}/v1/documents/{'a' * 32}")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=30)
        assert refused.value.code == 401
        request.add_header("Authorization", f"Bearer {keys.read}")
        with pytest.raises(urllib.error.HTTPError) as absent:
            urllib.request.urlopen(request, timeout=30)
        assert absent.value.code == 404


def test_openapi_documents_the_bearer_scheme_and_each_scope() -> None:
    document = build()
    assert document["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"
    paths = document["paths"]
    assert paths["/v1/documents"]["post"]["security"] == [{"apiKey": ["ingest"]}]
    assert paths["/v1/documents/{id}"]["get"]["security"] == [{"apiKey": ["read"]}]
    assert paths["/v1/imports/{job}"]["delete"]["security"] == [{"apiKey": ["admin"]}]
    unauthorized = paths["/v1/imports/{job}"]["get"]["responses"]["401"]
    assert "/problems/unauthorized" in unauthorized["description"]
    assert "WWW-Authenticate" in unauthorized["headers"]
    assert "/problems/forbidden" in paths["/v1/imports"]["post"]["responses"]["403"]["description"]
    for path in OPEN_PATHS:
        assert paths[path]["get"]["security"] == []
        assert "401" not in paths[path]["get"]["responses"]


async def test_a_burst_of_wrong_secrets_runs_no_more_scrypts_than_allowed(
    authed, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """300 wrong secrets for one key id at once: the throttle used to look before its
    lock and count after scrypt, so 109 scrypts ran where 10 are allowed."""
    runs = []
    matches = service.keys.KeyEntry.matches
    monkeypatch.setattr(
        service.keys.KeyEntry, "matches", lambda entry, s: runs.append(1) or matches(entry, s)
    )
    wrong = f"vk_{keys.id(keys.ingest)}_{'a' * 52}"
    answers = await asyncio.gather(*(post_article(authed, wrong) for _ in range(300)))
    statuses = [answer.status for answer in answers]
    assert set(statuses) <= {401, 429, 503}
    assert len(runs) <= service.keys.FAILURES_ALLOWED, len(runs)
    assert statuses.count(401) == len(runs)
    for answer in answers:
        if answer.status in (429, 503):
            assert int(answer.headers["Retry-After"]) >= 1


async def test_unverified_tokens_beyond_the_queue_bound_get_503(
    authed, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service.keys, "MAX_UNVERIFIED_WAITING", 2)
    ids = [keys.id(key) for key in (keys.ingest, keys.read, keys.admin)]
    answers = await asyncio.gather(
        *(post_article(authed, f"vk_{key_id}_{'b' * 52}") for key_id in ids for _ in range(3))
    )
    statuses = sorted(answer.status for answer in answers)
    assert 503 in statuses
    assert statuses.count(401) <= 2 * 3  # scrypt ran only for tokens let into the queue
    overloaded = next(answer for answer in answers if answer.status == 503)
    assert (await overloaded.json())["type"] == "/problems/overloaded"


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"hash": "zz"}, "hash must be"),
        ({"salt": "not hex"}, "salt must be"),
        ({"n": 1000}, "power of 2"),
        ({"n": 2**24}, "MiB"),
        ({"id": "UPPER123"}, "id must be"),
        ({"scopes": []}, "at least one scope"),
    ],
)
def test_a_malformed_keys_entry_is_a_start_up_error_naming_its_line(
    tmp_path: Path, keys: Keys, change: dict[str, Any], complaint: str
) -> None:
    """Such entries used to load and then make a request with that key a 500."""
    first, *rest = keys.path.read_text().splitlines()
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join([first, json.dumps({**json.loads(rest[0]), **change})]) + "\n")
    with pytest.raises(ConfigError, match=f"line 2: .*{re.escape(complaint)}"):
        KeysFile(bad)
    with pytest.raises(ConfigError, match="line 2"):
        create_app(Config(keys_file=bad))


def test_a_key_id_twice_in_the_keys_file_is_a_start_up_error(tmp_path: Path, keys: Keys) -> None:
    first = keys.path.read_text().splitlines()[0]
    twice = tmp_path / "twice.jsonl"
    twice.write_text(f"{first}\n{first}\n")
    with pytest.raises(ConfigError, match=r"line 2: key id .* earlier line"):
        load_keys(twice)
