"""Merge the run folders of a sharded benchmark (``--shard i/N``, e.g. a Slurm array) into one."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

from tmatch.bench.report import run_methods
from tmatch.bench.run import CASE_FIELDS, spec_cases
from tmatch.bench.store import RunStore, write_atomic
from tmatch.errors import InputError


def merge_runs(runs: Sequence[str | os.PathLike], out: str | os.PathLike) -> Path:
    """Combine runs of the same data, protocols, seed and limit (any shards) into ``out``.

    Records are taken per method and case (a later run wins a duplicate); the merged spec has
    no shard, so its report lists the whole case set and says when cases are missing. ``out``
    must not already hold a run. Tables and report are left to the caller
    (:func:`tmatch.bench.report.write_tables`, :func:`~tmatch.bench.report.write_report`).
    """
    if not runs:
        raise InputError("merge needs at least one run folder")
    stores = [RunStore(r).require() for r in runs]
    specs = [s.read_spec() for s in stores]
    first = specs[0]
    for s, spec in zip(stores[1:], specs[1:]):
        diff = [k for k in CASE_FIELDS if k != "shard" and spec.get(k) != first.get(k)]
        if diff:
            raise InputError(f"cannot merge {s.root} with {stores[0].root}: {', '.join(diff)} differ")
    dest = RunStore(out)
    if dest.exists():
        raise InputError(f"{dest.root} already holds a run; merge into a new folder")
    merged = {**first, "shard": [0, 1], "merged_from": [str(s.root.resolve()) for s in stores]}
    merged["methods"] = list(dict.fromkeys(m for s, sp in zip(stores, specs) for m in run_methods(s, sp)))
    order = {k.case: i for i, k in enumerate(spec_cases(merged))}
    with dest:
        for m in merged["methods"]:
            rows: dict[str, dict] = {}
            for s in stores:
                rows.update(s.read_records(m))
            ordered = sorted((r for c, r in rows.items() if c in order), key=lambda r: order[r["case"]])
            write_atomic(dest.records_path(m),
                         "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in ordered))
        methods_info: dict = {}
        for s in stores:
            p = s.root / "methods.json"
            if p.exists():
                methods_info.update(json.loads(p.read_text()))
        if methods_info:
            write_atomic(dest.root / "methods.json", json.dumps(methods_info, indent=2) + "\n")
        dest.write_spec(merged)  # last: a folder without spec is not a run yet
    return dest.root
