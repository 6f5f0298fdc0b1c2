"""checkov's Kubernetes policies on the rendered chart, every value set; only the justified skips pass.

The skipped checks and their reasons are listed in the chart's README (this test checks it stays so).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.deploy.conftest import CHART, VALUE_SETS, Rendered

SKIPPED_CHECKS = {
    "CKV_K8S_15": "Image Pull Policy should be Always",
    "CKV_K8S_35": "Prefer using secrets as files over secrets as environment variables",
    "CKV_K8S_43": "Image should use digest",
}


def test_checkov_passes_on_every_value_set(
    checkov_bin: Path, rendered_sets: dict[str, Rendered], tmp_path: Path
) -> None:
    for name in VALUE_SETS:
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump_all(rendered_sets[name].docs, sort_keys=False))
    completed = subprocess.run(
        [
            str(checkov_bin),
            "--directory",
            str(tmp_path),
            "--framework",
            "kubernetes",
            "--skip-download",
            "--skip-check",
            ",".join(sorted(SKIPPED_CHECKS)),
            "--output",
            "json",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        env={"PATH": str(checkov_bin.parent), "HOME": str(tmp_path), "LOG_LEVEL": "WARNING"},
    )
    report: Any = json.loads(completed.stdout)
    reports = report if isinstance(report, list) else [report]
    failed = [
        f"{check['check_id']} {check['resource']} ({check['file_path']})"
        for part in reports
        for check in part.get("results", {}).get("failed_checks", [])
    ]
    assert not failed, "\n".join(failed)
    assert completed.returncode == 0, completed.stderr[-2000:]
    passed = sum(part["summary"]["passed"] for part in reports)
    assert passed > 1000, f"checkov ran only {passed} checks"


def test_every_skipped_check_is_justified_in_the_chart_readme() -> None:
    readme = (CHART / "README.md").read_text()
    for check_id in SKIPPED_CHECKS:
        line = next((line for line in readme.splitlines() if check_id in line), "")
        assert len(line) > len(check_id) + 40, f"{check_id} is skipped but not justified in the chart README"
