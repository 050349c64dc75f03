"""Shared fixtures. Every test gets its own KB_HOME; the real model loads once per session; no
test reaches beyond loopback (the net of tests/net, in pytest and every process it starts)."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NET_DIR = ROOT / "tests" / "net"
sys.path.insert(0, str(NET_DIR))
loopback_only = __import__("loopback_only")  # from NET_DIR, which is not a package
loopback_only.install()
# Processes the tests start inherit the net through tests/net/sitecustomize.py.
os.environ["PYTHONPATH"] = os.pathsep.join([str(NET_DIR), *filter(None, [os.environ.get("PYTHONPATH")])])
NET_LOG = loopback_only.LOG_ENV
if not os.environ.get(NET_LOG):
    os.environ[NET_LOG] = tempfile.mkstemp(prefix="kb-test-net-", suffix=".log")[1]

from kb import KnowledgeBase  # noqa: E402
from kb.config import load_settings  # noqa: E402

SAMPLE = ROOT / "sample_corpus"
pytest_plugins = ("tests.servers", "tests.backends")  # redis_server, chroma_server, redis_url; backend

_SCRUB = (
    "KB_NAME",
    "KB_MODEL",
    "KB_TOP_K",
    "KB_STORE_URL",
    "KB_STATE_URL",
    "KB_QUEUE_URL",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "KB_OPENAI_MODEL",
)


class NetWatch:
    """The net's refusals during one test. A refusal the test did not `expect` fails it, even
    when the process that tried swallowed the error."""

    def __init__(self, log: Path) -> None:
        self.log = log
        self.start = log.stat().st_size if log.exists() else 0
        self.expected: list[str] = []

    def refusals(self) -> list[str]:
        if not self.log.exists():
            return []
        with self.log.open("rb") as f:
            f.seek(self.start)
            return f.read().decode("utf-8", "replace").splitlines()

    def expect(self, address: str) -> None:
        self.expected.append(address)

    def unexpected(self) -> list[str]:
        return [line for line in self.refusals() if not any(a in line for a in self.expected)]


@pytest.fixture(autouse=True)
def loopback_net():
    watch = NetWatch(Path(os.environ[NET_LOG]))
    yield watch
    if unexpected := watch.unexpected():
        pytest.fail("the test tried to reach beyond loopback:\n" + "\n".join(unexpected), pytrace=False)


@pytest.fixture(autouse=True)
def kb_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "kbhome"
    monkeypatch.setenv("KB_HOME", str(home))
    for var in _SCRUB:
        monkeypatch.delenv(var, raising=False)
    return home


@pytest.fixture
def make_kb(kb_home):
    def make(**overrides):
        return KnowledgeBase(load_settings(**overrides))

    return make


@pytest.fixture(scope="session")
def sample_home(tmp_path_factory) -> Path:
    """sample_corpus ingested once with the real model; tests copy it before writing."""
    home = tmp_path_factory.mktemp("sample-home")
    corpus = home / "corpus"
    shutil.copytree(SAMPLE, corpus)
    report = KnowledgeBase(load_settings(home=str(home))).ingest([corpus])
    assert not report.failed, report.failed
    return home


@pytest.fixture
def sample_kb(sample_home, kb_home):
    """A private copy of the sample KB (real model), as the current KB_HOME."""
    shutil.copytree(sample_home, kb_home)
    return KnowledgeBase(load_settings())


class CliResult:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    def json(self):
        return json.loads(self.out)

    def ndjson(self) -> list:
        return [json.loads(line) for line in self.out.splitlines() if line.strip()]


@pytest.fixture
def cli(capsys, monkeypatch):
    """Run `kb ARGS` in this process (sharing the loaded model), as the console script does."""
    from kb.cli.app import main

    def run(*args: str, stdin: str | bytes | None = None) -> CliResult:
        if stdin is not None:
            data = stdin if isinstance(stdin, bytes) else stdin.encode()
            monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))
        capsys.readouterr()
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


# Tests run as root, and root reads and writes whatever the permission bits say. A process
# started through this prefix has lost that override, so file permissions hold for it.
WITHOUT_ROOT_OVERRIDE = [
    "setpriv",
    "--inh-caps=-dac_override,-dac_read_search",
    "--bounding-set=-dac_override,-dac_read_search",
]


def run_kb(
    *args: str, env: dict | None = None, stdin: str | None = None, timeout: float = 120, as_user: bool = False
) -> CliResult:
    """Run `kb ARGS` in a separate process: for exit codes, stdin, and cross-process state.
    `as_user`: without root's permission override (see WITHOUT_ROOT_OVERRIDE)."""
    full_env = dict(os.environ, **(env or {}))
    prefix = WITHOUT_ROOT_OVERRIDE if as_user else []
    proc = subprocess.run(
        [*prefix, sys.executable, "-m", "kb", *map(str, args)],
        input=stdin,
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def fake_openai():
    from tests.openai_server import FakeOpenAI

    server = FakeOpenAI().start()
    yield server
    server.stop()


def write_config(home: Path, text: str) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(text)


def provider_config(
    url: str, *, timeout_s: float = 2, max_retries: int = 1, threshold: int = 3, cooldown_s: float = 60
) -> str:
    return f"""
[[providers]]
name = "primary"
kind = "openai"
base_url = "{url}"
model = "gpt-4o-mini"
api_key_env = "KB_TEST_KEY"
timeout_s = {timeout_s}
max_retries = {max_retries}

[breaker]
failure_threshold = {threshold}
cooldown_s = {cooldown_s}
"""
