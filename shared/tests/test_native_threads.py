"""Native thread pools sized to the process's share of the machine, before the libraries load."""

from __future__ import annotations

from pathlib import Path

from switchboard_shared.native_threads import (
    POOL_VARIABLES,
    available_cpus,
    process_share,
    size_native_threads,
)


def test_share_is_a_quarter_of_the_cpus_and_at_least_one() -> None:
    assert process_share({}, cpus=2) == 1
    assert process_share({}, cpus=8) == 2
    assert process_share({}, cpus=1) == 1


def test_the_setting_wins_over_the_default() -> None:
    assert process_share({"SWITCHBOARD_NATIVE_THREADS": "3"}, cpus=2) == 3
    assert process_share({"SWITCHBOARD_NATIVE_THREADS": "0"}, cpus=8) == 2
    assert process_share({"SWITCHBOARD_NATIVE_THREADS": "many"}, cpus=8) == 2


def test_pool_variables_are_set_unless_already_set() -> None:
    env = {"OPENBLAS_NUM_THREADS": "4", "SWITCHBOARD_NATIVE_THREADS": "2"}
    assert size_native_threads(env) == 2
    assert env["OPENBLAS_NUM_THREADS"] == "4"
    assert all(env[name] == "2" for name in POOL_VARIABLES if name != "OPENBLAS_NUM_THREADS")
    assert env["TOKENIZERS_PARALLELISM"] == "false"


def test_a_cgroup_quota_caps_the_cpus(tmp_path: Path) -> None:
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert available_cpus(tmp_path) <= 2
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert available_cpus(tmp_path) >= 1
