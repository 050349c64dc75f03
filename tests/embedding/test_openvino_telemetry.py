"""OpenVINO's own telemetry stays off: `import openvino` would send a usage event to Google
Analytics and write a client id under ~/intel (the loopback net of tests/net refuses the
send, and a refusal fails the test, so this runs in a fresh process with a fresh HOME)."""

from __future__ import annotations

import os
import subprocess
import sys


def test_the_openvino_encoder_sends_no_telemetry_and_writes_nothing_in_home(tmp_path):
    code = (
        "from kb.config import load_settings\n"
        "from kb.embedding.openvino_bert import import_openvino, supported_precision\n"
        "import_openvino()\n"
        "print(supported_precision())\n"
    )
    env_home = tmp_path / "user"
    env_home.mkdir()
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HOME": str(env_home), "KB_HOME": str(tmp_path / "kb"), "CI": "false"},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() in ("bfloat16", "float32")
    assert list(env_home.iterdir()) == []  # no ~/intel/openvino_ga_cid
