"""The team gateway of docs/how-to/serve-a-team.md, run as a user would: two ``relay serve
--workers 2`` replicas over one real Redis and one real PostgreSQL, with the page's own catalog and
commands (its model pointed at relay-mock, its servers at the ones this test starts).

What must hold: a key made with ``relay keys create`` on one machine works on both
replicas at once; their answers are cached in the shared Redis; a key revoked through
one replica's admin API is refused by the other within a second; ``relay spend`` sees
every answered request once, whichever replica answered it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
import redis as redis_lib
import yaml

from relay_core.real_servers import free_port, postgres_server, redis_server
from relay_serve._settings import hash_key, new_key

PAGE = Path(__file__).resolve().parents[1] / "docs" / "how-to" / "serve-a-team.md"
RELAY = [sys.executable, "-c", "from relay_core.cli import main; main()"]


def gateway_section() -> tuple[str, list[str]]:
    """The catalog and the shell lines of the page's section on replicas (shown as text:
    the site's block runner has no Redis or PostgreSQL, so this test runs them)."""
    text = PAGE.read_text()
    section = text.split("## Across replicas", 1)[1].split("\n## ", 1)[0]
    catalog = re.search(r"```yaml\n(.*?)```", section, re.S)
    shell = re.search(r"```text\n(.*?)```", section, re.S)
    assert catalog, "the page's gateway section lost its yaml block"
    assert shell, "the page's gateway section lost its block of commands"
    lines = [line.split("  #")[0].strip() for line in shell[1].splitlines() if line.strip()]
    return catalog[1], lines


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[str, str]]:
    with redis_server() as redis, postgres_server() as postgres:
        yield redis.url, postgres.url


def relay(*args: str, env: dict[str, str], cwd: Path) -> str:
    done = subprocess.run(
        [*RELAY, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@contextlib.contextmanager
def replica(args: list[str], env: dict[str, str], cwd: Path) -> Iterator[str]:
    port = free_port()
    log = (cwd / f"serve-{port}.log").open("wb")
    process = subprocess.Popen(
        [*RELAY, *args, "--port", str(port)], stdout=log, stderr=subprocess.STDOUT, env=env, cwd=cwd
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, (cwd / f"serve-{port}.log").read_text()
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            assert time.monotonic() < deadline, "relay serve did not start"
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def test_the_pages_gateway_runs_as_one_server(servers: tuple[str, str], tmp_path: Path) -> None:
    redis_url, postgres_url = servers
    catalog_text, lines = gateway_section()
    catalog = yaml.safe_load(catalog_text)
    catalog["models"] = dict.fromkeys(catalog["models"], "mock/echo")
    serve = catalog["plugins"]["serve"]
    assert serve["state"].startswith("redis://")
    assert serve["database"].startswith("$env.")
    serve["state"] = redis_url
    admin = new_key()
    serve["admin_keys"] = [{"name": "ops", "hash": hash_key(admin)}]
    cache_url = catalog["plugins"]["cache"]["url"] = redis_url.rsplit("/", 1)[0] + "/1"
    (tmp_path / "relay.yaml").write_text(yaml.safe_dump(catalog))
    variable = serve["database"].removeprefix("$env.")
    env = {**os.environ, variable: postgres_url, "RELAY_CONFIG": str(tmp_path / "relay.yaml")}

    installs, exports, create, start, report = lines
    assert installs.startswith("pip install")
    assert exports.startswith("export")
    secret = re.search(r"sk-relay-\S+", relay(*shlex.split(create)[1:], env=env, cwd=tmp_path))
    assert secret, "relay keys create printed no key"
    serve_args = shlex.split(start)[1:]
    serve_args[serve_args.index("--host") + 1] = "127.0.0.1"
    serve_args[serve_args.index("--workers") + 1] = "2"

    with (
        replica(serve_args, env, tmp_path) as one,
        replica(serve_args, env, tmp_path) as two,
        contextlib.ExitStack() as closing,
    ):
        clients = [
            closing.enter_context(openai.OpenAI(base_url=f"{url}/v1", api_key=secret[0]))
            for url in (one, two)
        ]
        asked = [{"role": "user", "content": "hello, gateway"}]
        answers = [c.chat.completions.create(model="fast", messages=asked) for c in clients]
        assert all(answer.choices[0].message.content for answer in answers)
        other = next(alias for alias in catalog["models"] if alias != "fast")
        for client in clients:  # the key may call only its models, on either replica
            with pytest.raises(openai.NotFoundError):
                client.chat.completions.create(model=other, messages=asked)
        with redis_lib.Redis.from_url(cache_url) as cache:
            assert cache.keys("relay:cache:*"), "no answer was cached in the shared Redis"

        revoked = httpx.post(
            f"{two}/admin/keys/app/revoke", headers={"authorization": f"Bearer {admin}"}
        )
        assert revoked.status_code == 200, revoked.text
        time.sleep(1.0)
        with pytest.raises(openai.AuthenticationError):
            clients[0].chat.completions.create(model="fast", messages=asked)

    spent = json.loads(relay(*shlex.split(report)[1:], "--json", env=env, cwd=tmp_path))
    assert spent["total"]["requests"] == 2
