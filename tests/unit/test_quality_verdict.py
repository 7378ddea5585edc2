"""The verdict that bench/quality.py prints under its table: which rows count for the target,
and when the target is met."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "quality.py"


@pytest.fixture(scope="module")
def quality() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_quality", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def row(task: str, contender: str, rmse: float) -> dict[str, Any]:
    return {"task": task, "contender": contender, "rmse": rmse, "seconds": 1.0, "converged": True}


def task_rows(task: str, std: float, best: float, mean: float = 100.0) -> list[dict[str, Any]]:
    return [
        row(task, "sgt:std", std),
        row(task, "baseline:hgb", best),
        row(task, "baseline:mean", mean),
    ]


def all_tasks(quality: ModuleType, std: float = 1.0) -> list[dict[str, Any]]:
    """Every judged row with `std` at 1.0 against a best baseline of 1.0."""
    rows: list[dict[str, Any]] = []
    for judged_on in quality.TARGET_ROWS.values():
        rows += task_rows(judged_on, std, 1.0)
    return rows


def judged(verdict: dict[str, Any], task: str) -> dict[str, Any]:
    return next(entry for entry in verdict["judged"] if entry["task"] == task)


def test_met_when_at_or_below_everywhere(quality: ModuleType) -> None:
    verdict = quality.target_verdict(all_tasks(quality), budget=60.0)
    assert verdict["is_met"] and verdict["at_or_below"] == 7


def test_two_tasks_within_the_margin_still_meet_it_but_three_do_not(quality: ModuleType) -> None:
    rows = all_tasks(quality)
    tasks = list(quality.TARGET_ROWS.values())
    for entry in rows:
        if entry["contender"] == "sgt:std" and entry["task"] in tasks[:2]:
            entry["rmse"] = 1.08
    verdict = quality.target_verdict(rows, budget=60.0)
    assert judged(verdict, tasks[0])["verdict"] == "within 10%"
    assert verdict["is_met"]
    next(e for e in rows if e["contender"] == "sgt:std" and e["task"] == tasks[2])["rmse"] = 1.08
    assert not quality.target_verdict(rows, budget=60.0)["is_met"]


def test_one_task_past_the_margin_misses(quality: ModuleType) -> None:
    rows = all_tasks(quality)
    rows[0]["rmse"] = 1.2
    verdict = quality.target_verdict(rows, budget=60.0)
    assert judged(verdict, rows[0]["task"])["verdict"] == "MISSED"
    assert not verdict["is_met"]


def test_linnerud_is_judged_on_its_twenty_splits(quality: ModuleType) -> None:
    rows = all_tasks(quality) + task_rows("linnerud", std=15.0, best=12.0)
    verdict = quality.target_verdict(rows, budget=60.0)
    assert [entry["task"] for entry in verdict["reference"]] == ["linnerud"]
    assert verdict["reference"][0]["verdict"] == "MISSED"
    assert verdict["is_met"]


def test_a_slow_or_unconverged_run_fails_the_target(quality: ModuleType) -> None:
    rows = all_tasks(quality)
    rows[0]["seconds"] = 61.0
    assert not quality.target_verdict(rows, budget=60.0)["is_met"]
    rows = all_tasks(quality)
    rows[0]["converged"] = False
    assert not quality.target_verdict(rows, budget=60.0)["is_met"]


def test_losing_to_the_mean_fails_the_target(quality: ModuleType) -> None:
    rows = [entry for entry in all_tasks(quality) if entry["task"] != "skinning"]
    rows += task_rows("skinning", std=1.05, best=1.0, mean=1.0)
    verdict = quality.target_verdict(rows, budget=60.0)
    assert judged(verdict, "skinning")["verdict"] == "within 10%"
    assert judged(verdict, "skinning")["beats_mean"] is False
    assert not verdict["is_met"]


def test_a_missing_task_is_not_met(quality: ModuleType) -> None:
    rows = [entry for entry in all_tasks(quality) if entry["task"] != "diabetes"]
    verdict = quality.target_verdict(rows, budget=60.0)
    assert verdict["tasks_judged"] == 6 and not verdict["is_met"]


def test_per_split_ratios_count_the_splits_std_wins(quality: ModuleType) -> None:
    rows = all_tasks(quality)
    for entry in rows:
        if entry["task"] == "linnerud_x20":
            splits = [1.0, 2.0, 3.0] if entry["contender"] == "sgt:std" else [2.0, 2.0, 2.0]
            entry["split_rmse"], entry["seconds_max"] = splits, 1.0
    spread = judged(quality.target_verdict(rows, budget=60.0), "linnerud_x20")["per_split"]
    assert spread["baseline:hgb"]["std_at_or_below"] == 2
    assert spread["baseline:hgb"]["lowest"] == 0.5 and spread["baseline:hgb"]["highest"] == 1.5
