"""docs/api.md is the OpenAPI document in words: regenerated, it must equal what is committed."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT


def test_the_api_reference_is_current():
    check = subprocess.run([sys.executable, str(ROOT / "scripts" / "api_reference.py"), "--check"],
                           capture_output=True, text=True, timeout=120)  # fmt: skip
    assert check.returncode == 0, check.stderr
