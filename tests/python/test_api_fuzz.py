"""docs/openapi.yaml against the running app, and property-based fuzzing of the public API.

The stack is the real one (tests/node/api_stack.js, started once for this file): the host binary
with spin.toml and the built components, a private redis-server, the native origin, anvil with a
GateNFT, wallets signed in with viem, three ready videos (gated on the NFT, public, and gated on
an address with no contract).

- The document is valid OpenAPI 3.1 (openapi-spec-validator).
- Every route of spin.toml is described, or listed in LEFT_OUT with its reason; every route the
  components' routers match on is described, and every described path is routed.
- Every described operation answers, to a real request (a real session, real ids, a real signed
  playback URL), one of its described success statuses with a body its schema accepts; every
  other method on a described path is 405 `method_not_allowed` whose `Allow` names exactly the
  described methods (plus HEAD / OPTIONS where the component takes them).
- schemathesis generates requests for every operation (examples, the coverage phase's boundary
  and negative values, then random ones, valid and invalid) with the real session on routes that
  take one (a fresh one, signed in here with eth-account, for each logout) and checks each answer
  (CHECKS): no 5xx, a described status, content type, headers and a body the described schema
  (for errors: `{"error", "code"}` with one of that answer's codes) accepts; invalid input
  refused with a 4xx; no authenticated route served without the session. Then sequences along
  the document's links (create a video, read it, change its gate, ask for playback, delete it)
  with real ids, plus: a deleted video stays gone.

Run: `python3 -m pytest tests/python/test_api_fuzz.py` once the host, the native side and the
components are built (scripts/test builds them). SG_FUZZ_EXAMPLES sets the random examples per
operation (default 100), SG_FUZZ_STATEFUL_EXAMPLES the number of link sequences (default 30).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import selectors
import subprocess
import tomllib
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
import schemathesis
import yaml
from eth_account import Account
from eth_account.messages import encode_defunct
from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import run_state_machine_as_test
from openapi_spec_validator import OpenAPIV31SpecValidator
from schemathesis.checks import (
    content_type_conformance,
    ignored_auth,
    missing_required_header,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
    use_after_free,
)
from schemathesis.core.failures import FailureGroup

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "openapi.yaml"
STACK_SCRIPT = ROOT / "tests" / "node" / "api_stack.js"
SPEC = yaml.safe_load(DOC.read_text())
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
# Methods probed for 405 on every described path. HEAD and OPTIONS are left to the components
# (the web app and the playlists take HEAD, the playlists OPTIONS); the Allow check names them.
PROBED = ("GET", "POST", "PUT", "PATCH", "DELETE")
IMPLICIT = {"HEAD", "OPTIONS"}

# spin.toml routes the document leaves out, and why.
LEFT_OUT = {
    "/internal/v1/events": "the native side's signed events: internal (docs/pipeline.md), not public",
}
FUZZ_EXAMPLES = int(os.environ.get("SG_FUZZ_EXAMPLES", "100"))
STATEFUL_EXAMPLES = int(os.environ.get("SG_FUZZ_STATEFUL_EXAMPLES", "30"))


def operations():
    """(path, method, operation) of every described operation."""
    for path, item in SPEC["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


# ---- the stack ----


@pytest.fixture(scope="module")
def stack():
    """Starts the stack; yields what api_stack.js printed. Closing its stdin stops it."""
    for binary in ("streamgate-host", "native-transcoder"):
        if not (ROOT / "target" / "release" / binary).exists():
            pytest.fail(f"target/release/{binary} is not built (scripts/test builds it)")
    log = open(Path(os.environ.get("TMPDIR", "/tmp")) / f"api-stack-{os.getpid()}.log", "w+")
    proc = subprocess.Popen(
        ["node", str(STACK_SCRIPT)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    try:
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout=180):
            raise RuntimeError("the stack did not start within 180 s")
        line = proc.stdout.readline()
        if not line:
            log.seek(0)
            raise RuntimeError(f"the stack did not start:\n{log.read()[-6000:]}")
        info = json.loads(line)
        info["chain_id"] = int(info["chain_id"])
        yield info
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            # SIGTERM lets the fixtures stop anvil, Redis, the host and the native side; SIGKILL
            # would leave them running.
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()
        os.unlink(log.name)


def sign_in(stack, key=None):
    """A new session, the way a wallet signs in: nonce, EIP-4361 text, personal_sign
    (eth-account), verify. Answers (token, address)."""
    account = Account.from_key(key) if key else Account.create()
    base = stack["base"]
    nonce = requests.post(f"{base}/api/v1/auth/nonce", json={}, timeout=10)
    assert nonce.status_code == 200, nonce.text
    issued = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    message = (
        f"{stack['domain']} wants you to sign in with your Ethereum account:\n"
        f"{account.address}\n\nSign in to StreamGate.\n\n"
        f"URI: {stack['uri']}\nVersion: 1\nChain ID: {stack['chain_id']}\n"
        f"Nonce: {nonce.json()['nonce']}\nIssued At: {issued}"
    )
    signature = account.sign_message(encode_defunct(text=message)).signature
    res = requests.post(
        f"{base}/api/v1/auth/verify",
        json={"message": message, "signature": "0x" + bytes(signature).hex()},
        timeout=10,
    )
    assert res.status_code == 200, res.text
    return res.json()["token"], account.address


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


# ---- the document itself ----


def test_document_is_valid_openapi_3_1():
    assert SPEC["openapi"].startswith("3.1.")
    OpenAPIV31SpecValidator(SPEC).validate()
    ids = [op["operationId"] for _, _, op in operations()]
    assert len(ids) == len(set(ids)), "operationIds are unique"


def routed(pattern: str, path: str) -> bool:
    """Does a spin.toml route pattern (`/x`, `/x/...`, `/x/:id/y`) take this described path?"""
    if pattern.endswith("/..."):
        prefix = pattern[: -len("...")]
        return path.startswith(prefix) or path == prefix.rstrip("/") or pattern == "/..."
    want = re.sub(r":\w+", "{}", pattern)
    return re.sub(r"\{\w+\}", "{}", path) == want


def test_every_spin_route_is_described_and_every_described_path_is_routed():
    routes = [t["route"] for t in tomllib.loads((ROOT / "spin.toml").read_text())["trigger"]["http"]]
    paths = list(SPEC["paths"])
    for route in routes:
        if route in LEFT_OUT:
            assert not any(routed(route, p) for p in paths), f"{route} is both left out and described"
            continue
        assert any(routed(route, p) for p in paths), f"spin.toml routes {route}; docs/openapi.yaml describes nothing there"
    for path in paths:
        assert any(routed(r, path) for r in routes if r != "/..." or path.count("/") >= 1), path
    assert set(LEFT_OUT) <= set(routes), "LEFT_OUT names a route spin.toml no longer has"


# The components whose routers match (method, path) in their source: what they match on must be
# described (the internal route aside), and what is described under their prefix must be matched.
ROUTER_SOURCES = {
    "components/auth/src/lib.rs": "/api/v1/auth/",
    "components/metadata/src/lib.rs": "/api/v1/videos",
    "components/playback/src/lib.rs": "/api/v1/videos/{id}/playback",
    "components/health/src/lib.rs": None,
}


def source_routes(text: str):
    """(METHOD, path) pairs a component's router matches: `(Method::Post, "/a/b")`,
    `(Method::Get, ["a", "b", id])` and spin-sdk Router calls `router.get("/a", ...)`."""
    found = set()
    for method, target in re.findall(r'\(Method::(\w+),\s*("[^"]*"|\[[^\]]*\])\)', text):
        if target.startswith('"'):
            path = target.strip('"')
        else:
            parts = [p.strip() for p in target.strip("[]").split(",") if p.strip()]
            path = "/" + "/".join(p.strip('"') if p.startswith('"') else "{" + p + "}" for p in parts)
        found.add((method.upper(), path))
    for method, path in re.findall(r'router\.(get|post|put|delete|patch)\("([^"]+)"', text):
        found.add((method.upper(), path))
    return found


def test_every_route_the_routers_match_is_described():
    described = {(m.upper(), p) for p, m, _ in operations()}
    for file, prefix in ROUTER_SOURCES.items():
        matched = {(m, p) for m, p in source_routes((ROOT / file).read_text()) if p not in LEFT_OUT}
        assert matched, f"no routes found in {file}: has its router changed shape?"
        missing = matched - described
        assert not missing, f"{file} answers {sorted(missing)}, which docs/openapi.yaml does not describe"
        if prefix:
            ours = {(m, p) for m, p in described if p.startswith(prefix.split("{")[0])}
            if file.endswith("metadata/src/lib.rs"):
                ours = {(m, p) for m, p in ours if not p.endswith("/playback")}
            if file.endswith("playback/src/lib.rs"):
                ours = {(m, p) for m, p in ours if p.endswith("/playback")}
            extra = ours - matched
            assert not extra, f"docs/openapi.yaml describes {sorted(extra)}, which {file} does not match"


# ---- every operation with a real request ----


def real_requests(stack):
    """operationId -> a function making a real, valid request for it (the order matters: the
    video deleted is one made for the purpose, and logout revokes a session of its own)."""
    base = stack["base"]
    creator, holder = stack["creator"], stack["holder"]
    gated, public = stack["videos"]["gated"], stack["videos"]["public"]
    s = requests.Session()

    def playback_urls():
        res = s.post(f"{base}/api/v1/videos/{gated}/playback", headers=bearer(holder["token"]), timeout=10)
        assert res.status_code == 200, res.text
        return res.json()

    def media_playlist():
        master = s.get(playback_urls()["hls"], timeout=10)
        track = next(l for l in master.text.splitlines() if l and not l.startswith("#"))
        return s.get(f"{base}/stream/{gated}/{track}", timeout=10)

    def create():
        return s.post(
            f"{base}/api/v1/videos",
            headers=bearer(creator["token"]),
            json={"title": "Probe", "gate": [{"chain_id": stack["chain_id"], "contract": stack["nft"], "standard": "erc721"}]},
            timeout=10,
        )

    def logout():
        token, _ = sign_in(stack)
        return s.post(f"{base}/api/v1/auth/logout", headers=bearer(token), timeout=10)

    def delete():
        video = create().json()["id"]
        return s.delete(f"{base}/api/v1/videos/{video}", headers=bearer(creator["token"]), timeout=10)

    return {
        "health": lambda: s.get(f"{base}/health", timeout=10),
        "ready": lambda: s.get(f"{base}/ready", timeout=10),
        "authNonce": lambda: s.post(f"{base}/api/v1/auth/nonce", json={"address": creator["address"]}, timeout=10),
        "authVerify": lambda: _verify(stack, s),
        "authMe": lambda: s.get(f"{base}/api/v1/auth/me", headers=bearer(creator["token"]), timeout=10),
        "authLogout": logout,
        "createVideo": create,
        "listVideos": lambda: s.get(
            f"{base}/api/v1/videos", params={"owner": creator["address"], "limit": 5}, headers=bearer(creator["token"]), timeout=10
        ),
        "getVideo": lambda: s.get(f"{base}/api/v1/videos/{public}", timeout=10),
        "updateGate": lambda: s.put(
            f"{base}/api/v1/videos/{public}/gate", headers=bearer(creator["token"]), json={"gate": []}, timeout=10
        ),
        "deleteVideo": delete,
        "playback": lambda: s.post(f"{base}/api/v1/videos/{gated}/playback", headers=bearer(holder["token"]), timeout=10),
        "hlsMaster": lambda: s.get(playback_urls()["hls"], timeout=10),
        "dashManifest": lambda: s.get(playback_urls()["dash"], timeout=10),
        "hlsMedia": media_playlist,
        "webConfig": lambda: s.get(f"{base}/config.json", timeout=10),
        "webHome": lambda: s.get(f"{base}/", timeout=10),
        "webBrowse": lambda: s.get(f"{base}/browse", timeout=10),
        "webStudio": lambda: s.get(f"{base}/studio", timeout=10),
        "webWatch": lambda: s.get(f"{base}/watch/{public}", timeout=10),
    }


def _verify(stack, s):
    """A real sign-in's verify call (sign_in() asserts it and answers the token; here the raw
    answer is what is checked), by the holder's key."""
    account = Account.from_key(stack["holder"]["key"])
    nonce = s.post(f"{stack['base']}/api/v1/auth/nonce", json={}, timeout=10).json()["nonce"]
    issued = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    message = (
        f"{stack['domain']} wants you to sign in with your Ethereum account:\n{account.address}\n\n"
        f"URI: {stack['uri']}\nVersion: 1\nChain ID: {stack['chain_id']}\nNonce: {nonce}\nIssued At: {issued}"
    )
    signature = "0x" + bytes(account.sign_message(encode_defunct(text=message)).signature).hex()
    return s.post(f"{stack['base']}/api/v1/auth/verify", json={"message": message, "signature": signature}, timeout=10)


SCHEMA = schemathesis.openapi.from_path(DOC)


def path_parameters(template: str, url: str) -> dict[str, str]:
    pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+?)", re.escape(template))
    match = re.fullmatch(pattern, urlsplit(url).path)
    assert match, f"{url} is not {template}"
    return match.groupdict()


def test_every_operation_answers_a_real_request_as_described(stack):
    probes = real_requests(stack)
    by_id = {op["operationId"]: (path, method, op) for path, method, op in operations()}
    assert set(probes) == set(by_id), "every described operation has a real request here, and only those"
    for op_id, probe in probes.items():
        path, method, op = by_id[op_id]
        res = probe()
        success = [int(c) for c in op["responses"] if c.startswith("2")]
        assert res.status_code in success, f"{op_id}: {res.status_code} {res.text[:300]}"
        # The answer against the document: status, content type, headers, body schema.
        case = SCHEMA[path][method.upper()].Case(path_parameters=path_parameters(path, res.request.url))
        case.validate_response(
            res,
            checks=[status_code_conformance, content_type_conformance, response_schema_conformance],
        )


def test_methods_not_described_answer_405_with_the_described_allow(stack):
    gated = stack["videos"]["gated"]
    for path, item in SPEC["paths"].items():
        described = {m.upper() for m in METHODS if m in item}
        url = stack["base"] + path.replace("{id}", gated).replace("{track}", "360p")
        for method in set(PROBED) - described:
            res = requests.request(method, url, headers=bearer(stack["creator"]["token"]), timeout=10)
            assert res.status_code == 405, f"{method} {path}: {res.status_code} {res.text[:200]}"
            assert res.headers["content-type"].startswith("application/json"), f"{method} {path}"
            assert res.json()["code"] == "method_not_allowed", f"{method} {path}: {res.text}"
            allow = {m.strip() for m in res.headers["allow"].split(",")}
            assert allow - IMPLICIT == described, f"{path}: Allow says {sorted(allow)}, the document {sorted(described)}"


def test_an_authorization_header_that_is_not_text_is_refused_not_ignored(stack):
    """Found beside the fuzzing (requests cannot generate it): header bytes that are not UTF-8
    made the components see no header at all, so the list and read routes, where the session is
    optional, answered as to an anonymous caller instead of 401 (docs/api.md, who sees what)."""
    base, video = stack["base"], stack["videos"]["public"]
    for method, path in [
        ("GET", "/api/v1/videos"),
        ("GET", f"/api/v1/videos/{video}"),
        ("GET", "/api/v1/auth/me"),
        ("POST", f"/api/v1/videos/{video}/playback"),
    ]:
        res = requests.request(method, base + path, headers={"Authorization": b"Bearer \xff\xfe"}, timeout=10)
        assert res.status_code == 401, f"{method} {path}: {res.status_code} {res.text[:200]}"
        assert res.json()["code"] == "invalid_token", f"{method} {path}: {res.text}"


# ---- property-based fuzzing (schemathesis) ----

# What every answer is held to: no 5xx; a described status, content type, headers and body (for
# an error, `{"error", "code"}` with one of that answer's codes); a request the document calls
# invalid is refused with a 4xx; an authenticated route refuses a request without the session;
# a method the path does not take is 405 with Allow; a missing required header is refused.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
    ignored_auth,
    unsupported_method,
    missing_required_header,
]
SESSIONS: dict[str, str] = {}


def case_seed(case) -> str:
    """The generated data, before any change made here."""
    body = case.body if isinstance(case.body, (str, dict, list)) else None
    return repr((case.method, case.path_parameters, case.query, body))


def pick(seed: str, n: int, what: str) -> int:
    """A choice among n made from the generated data (so a failing example replays the same
    way), independent of the other choices (`what`)."""
    return int.from_bytes(hashlib.sha256(f"{what}:{seed}".encode()).digest()[:8], "big") % n


def with_real_ids(case, stack, seed):
    """Most generated ids are unknown (404); two in three are swapped for the stack's ready videos
    (gated on the NFT, public, gated on an address with no contract), so the fuzzed requests
    reach the gate check, the owner checks and the playlists' token check. Not for DELETE: the
    fuzzer would delete them."""
    params = case.path_parameters or {}
    if "id" not in params or case.method == "DELETE":
        return
    videos = list(stack["videos"].values())
    choice = pick(seed, 3 * len(videos) // 2, "video")
    if choice < len(videos):
        params["id"] = videos[choice]
        # Half the playlist requests for a real video carry its real signed token, so the
        # generated track names and the rendering are reached, not only the token check.
        if case.query is not None and "hdnts" in case.query and pick(seed, 2, "token"):
            case.query["hdnts"] = playlist_token(stack, videos[choice])


def playlist_token(stack, video: str) -> str:
    """A real `hdnts` for the video, asked for by its owner (the gate admits the owner)."""
    tokens = stack.setdefault("tokens", {})
    if video not in tokens:
        res = requests.post(
            f"{stack['base']}/api/v1/videos/{video}/playback", headers=bearer(stack["creator"]["token"]), timeout=10
        )
        assert res.status_code == 200, res.text
        tokens[video] = re.search(r"[?&]hdnts=([^&]*)", res.json()["hls"]).group(1)
    return tokens[video]


def headers_for(case, stack, seed, wallets=("creator", "holder", "stranger")):
    """The real session where the operation takes one. Routes where it is optional are called
    with it and without it (chosen from the generated data, so a shrunk example is replayed the
    same way); logout gets a fresh session of its own each time, or it would revoke the one the
    other calls use."""
    security = case.operation.definition.raw.get("security")
    if not security:
        return {}
    if case.operation.definition.raw["operationId"] == "authLogout":
        return bearer(sign_in(stack)[0])
    if {} in security and pick(seed, 2, "anonymous"):
        return {}
    # The owner, the NFT's holder and a stranger: the gate is checked for the last two only.
    return bearer(stack[wallets[pick(seed, len(wallets), "wallet")]]["token"])


@SCHEMA.parametrize()
@settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_api_fuzz(case, stack):
    seed = case_seed(case)
    with_real_ids(case, stack, seed)
    headers = dict(case.headers or {})
    headers.update(headers_for(case, stack, seed))
    case.call_and_validate(base_url=stack["base"], headers=headers, checks=CHECKS, timeout=15)


def test_api_fuzz_stateful(stack):
    """Sequences along the document's links: a video created, then read, its gate changed, its
    playback asked for and it deleted, in the orders Hypothesis picks (real ids, not random
    ones), with the same checks plus use_after_free (a deleted video stays gone)."""

    sent = {}
    failures = []

    class Workflow(SCHEMA.as_state_machine()):
        def get_call_kwargs(self, case):
            # Always the owner's session: which step Hypothesis may take next depends on the
            # answers so far, and a wallet chosen from data holding server-made ids would make
            # those answers differ between runs of the same sequence.
            sent[id(case)] = headers_for(case, stack, "owner", wallets=("creator",))
            return {"base_url": stack["base"], "headers": sent[id(case)], "timeout": 15}

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            # Collected rather than raised: Hypothesis would replay the failing sequence to report
            # it, and with the server's state moved on, the replay takes other steps.
            try:
                case.validate_response(
                    response, checks=CHECKS + [use_after_free], headers=sent.pop(id(case), None), transport_kwargs=kwargs
                )
            except (AssertionError, FailureGroup) as e:
                failures.append(f"{case.method} {case.formatted_path}: {e}")

    run_state_machine_as_test(
        Workflow,
        settings=settings(
            max_examples=STATEFUL_EXAMPLES,
            stateful_step_count=6,
            # No shrinking: which steps are possible depends on the server's earlier answers,
            # so Hypothesis cannot replay a sequence it has cut down.
            phases=[Phase.explicit, Phase.generate],
            deadline=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        ),
    )
    assert not failures, "\n\n".join(failures[:5])
