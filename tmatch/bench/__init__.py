"""The benchmark harness: run matchers on pair sources, store every record and mask, report.

Compute (:mod:`~tmatch.bench.run`, which writes records) apart from storage
(:mod:`~tmatch.bench.store`) and from tables and pictures (:mod:`~tmatch.bench.report`), which
are drawn from stored records only: the caller asks for them (:func:`finish_run`) after a run.

>>> from tmatch.bench import finish_run, load_table, run_bench  # doctest: +SKIP
>>> run_bench("runs/demo", ["sift", "ncc"], protocols=["seed", "warp", "negatives"])  # doctest: +SKIP
>>> finish_run("runs/demo")                                  # doctest: +SKIP
>>> load_table("runs/demo").groupby("method")["iou"].mean()  # doctest: +SKIP
"""

from tmatch.bench.cases import (
    PROTOCOLS,
    BenchResult,
    CaseKey,
    CaseRecord,
    DataSpec,
    MethodInfo,
    case_keys,
    parse_shard,
)
from tmatch.bench.evaluate import evaluate_unit
from tmatch.bench.merge import merge_runs
from tmatch.bench.report import (
    Comparison,
    ProtocolRow,
    ShownCase,
    check_compare,
    compare_methods,
    describe_table,
    finish_run,
    load_records,
    load_table,
    protocol_table,
    show_case,
    write_report,
    write_tables,
    write_text_masks,
)
from tmatch.bench.run import run_bench
from tmatch.bench.store import RunStore

__all__ = [
    "PROTOCOLS",
    "BenchResult",
    "CaseKey",
    "CaseRecord",
    "Comparison",
    "DataSpec",
    "MethodInfo",
    "ProtocolRow",
    "RunStore",
    "ShownCase",
    "case_keys",
    "check_compare",
    "compare_methods",
    "describe_table",
    "evaluate_unit",
    "finish_run",
    "load_records",
    "load_table",
    "merge_runs",
    "parse_shard",
    "protocol_table",
    "run_bench",
    "show_case",
    "write_report",
    "write_tables",
    "write_text_masks",
]
