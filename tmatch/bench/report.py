"""Tables, report, plots and galleries of a benchmark run — drawn from stored records only.

Nothing here runs a matcher. Galleries and :func:`show_case` regenerate a case's pair from the
run's stored data spec and seed (pairs are deterministic) and draw the stored masks on it.
"""

from __future__ import annotations

import io as _io
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from tmatch import rle
from tmatch.bench.run import TABLE_COLUMNS, CaseKey, CaseRecord, DataSpec, spec_cases
from tmatch.bench.store import RunStore, safe_name, write_atomic
from tmatch.errors import DataError, InputError, TmatchError

_BOOL = ("present", "found", "correct")
_INT = ("index", "image_h", "image_w", "threads", "batch")
_NULLABLE_INT = ("ann_id", "pred_x", "pred_y", "pred_w", "pred_h")
#: columns that differ between two runs of the same cases only through timing and memory.
TIMING_COLUMNS = ("ms", "rss_mb", "peak_rss_mb", "gpu_mb")


# ----------------------------------------------------------------------------- loading
def run_methods(store: RunStore, spec: dict[str, Any] | None = None) -> list[str]:
    """The run's methods in the order they were asked for, then any others found on disk."""
    spec = spec or store.read_spec()
    return list(dict.fromkeys([*spec.get("methods", []), *store.methods_on_disk()]))


def load_records(run: str | os.PathLike, methods: Sequence[str] | None = None
                 ) -> dict[str, dict[str, CaseRecord]]:
    """``{method: {case: CaseRecord}}`` of a run's stored lines (masks included)."""
    store = RunStore(run).require()
    methods = list(methods) if methods else run_methods(store)
    return {m: {c: CaseRecord.from_row(r) for c, r in store.read_records(m).items()} for m in methods}


def load_table(run: str | os.PathLike, methods: Sequence[str] | None = None) -> Any:
    """The run's records as a pandas DataFrame (one row per case and method, no masks), in case
    order then method order; only the cases of the run's spec."""
    import pandas as pd

    store = RunStore(run).require()
    spec = store.read_spec()
    methods = list(methods) if methods else run_methods(store, spec)
    order = {k.case: i for i, k in enumerate(spec_cases(spec))}
    rows = []
    for mi, m in enumerate(methods):
        for case, row in store.read_records(m).items():
            if case in order:
                rows.append({**{c: row.get(c) for c in TABLE_COLUMNS}, "_o": order[case], "_m": mi})
    df = pd.DataFrame(rows, columns=[*TABLE_COLUMNS, "_o", "_m"])
    df = df.sort_values(["_o", "_m"], kind="stable").drop(columns=["_o", "_m"]).reset_index(drop=True)
    for c in _BOOL:
        df[c] = df[c].astype(bool)
    for c in _INT:
        df[c] = df[c].astype("int64")
    for c in _NULLABLE_INT:
        df[c] = df[c].astype("Int64")
    for c in ("box_x", "box_y", "box_w", "box_h", "score", "iou", "ms", "rss_mb", "peak_rss_mb", "gpu_mb"):
        df[c] = df[c].astype("float64")
    for c in ("case", "protocol", "method", "image_name", "image_id", "label", "device", "error"):
        df[c] = df[c].astype(str)
    return df


def write_tables(run: str | os.PathLike, text_masks: bool = False) -> Any:
    """Write ``results.csv`` and ``results.parquet`` (atomically); with ``text_masks`` also
    ``masks/<method>.txt`` in the original's ``H,W:runs`` format. Returns the DataFrame."""
    store = RunStore(run).require()
    df = load_table(run)
    write_atomic(store.csv_path, df.to_csv(index=False))
    buf = _io.BytesIO()
    df.to_parquet(buf, index=False)
    write_atomic(store.parquet_path, buf.getvalue())
    if text_masks:
        write_text_masks(run)
    return df


def write_text_masks(run: str | os.PathLike) -> list[Path]:
    """``masks/<method>.txt``: one ``case<TAB>H,W:start length ...`` line per case."""
    store = RunStore(run).require()
    spec = store.read_spec()
    order = [k.case for k in spec_cases(spec)]
    paths = []
    for m in run_methods(store, spec):
        rows = store.read_records(m)
        lines = [f"{c}\t{rle.to_text(rle.decode(rows[c]['mask']))}\n" for c in order if c in rows]
        paths.append(write_atomic(store.text_masks_path(m), "".join(lines)))
    return paths


# ----------------------------------------------------------------------------- tables
def describe_table(df: Any, methods: Sequence[str]) -> Any:
    """``describe()`` of IoU and time per method, the original study's layout: one column per
    method and quantity (``iou_<method>``, ``ms_<method>``), rows count/mean/std/min/25%/50%/
    75%/max. Uses the cases where the template is present (all cases if there are none)."""
    import pandas as pd

    sub = df[df["present"]] if df["present"].any() else df
    cols = {}
    for q in ("iou", "ms"):
        for m in methods:
            s = sub.loc[sub["method"] == m, ["case", q]].set_index("case")[q]
            cols[f"{q}_{m}"] = s
    return pd.DataFrame(cols).describe()


@dataclass
class ProtocolRow:
    """Per protocol and method: the summary numbers of the report."""

    protocol: str
    method: str
    cases: int
    mean_iou: float
    success: float
    correct_absent: float
    median_ms: float


def protocol_table(df: Any, methods: Sequence[str]) -> list[ProtocolRow]:
    """Mean IoU, success rate (IoU > 0.5, on cases with the template present), correct-absent
    rate (on cases without it) and median ms, per protocol and method."""
    out = []
    for p in dict.fromkeys(df["protocol"]):
        for m in methods:
            s = df[(df["protocol"] == p) & (df["method"] == m)]
            if s.empty:
                continue
            pos, neg = s[s["present"]], s[~s["present"]]
            out.append(ProtocolRow(
                p, m, len(s), float(s["iou"].mean()),
                float((pos["iou"] > 0.5).mean()) if len(pos) else float("nan"),
                float((~neg["found"]).mean()) if len(neg) else float("nan"),
                float(s["ms"].median())))
    return out


@dataclass
class Comparison:
    """Cases where method ``a`` did better, ``b`` did better, or both failed (IoU = 0)."""

    a: str
    b: str
    a_better: list[str]
    b_better: list[str]
    both_failed: list[str]
    ties: int


def compare_methods(df: Any, a: str, b: str, eps: float = 1e-9) -> Comparison:
    """Split the cases both methods ran into A better / B better / both failed (IoU = 0) / tie.

    The better lists are ordered by the IoU difference, largest first."""
    w = df.pivot_table(index="case", columns="method", values="iou", sort=False)
    if a not in w or b not in w:
        missing = a if a not in w else b
        raise InputError(f"method {missing!r} has no records in this run")
    w = w[[a, b]].dropna()
    d = w[a] - w[b]
    ab = d[d > eps].sort_values(ascending=False, kind="stable").index.tolist()
    bb = d[d < -eps].sort_values(kind="stable").index.tolist()
    failed = w[(w[a] == 0) & (w[b] == 0)].index.tolist()
    ties = int(((d.abs() <= eps) & ~((w[a] == 0) & (w[b] == 0))).sum())
    return Comparison(a, b, ab, bb, failed, ties)


def _fmt(v: float, pct: bool = False, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "—"
    return f"{100 * v:.1f}%" if pct else f"{v:.{digits}f}"


def _md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


# ------------------------------------------------------------------------------- plots
def _save_figure(fig: Any, path: Path) -> Path:
    buf = _io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return write_atomic(path, buf.getvalue())


def plot_iou(df: Any, methods: Sequence[str], path: Path) -> Path:
    """IoU distributions side by side (histogram bars per method, one panel per protocol)."""
    from matplotlib.figure import Figure

    protocols = list(dict.fromkeys(df["protocol"]))
    fig = Figure(figsize=(4.2 * len(protocols) + 1, 3.6))
    bins = np.linspace(0, 1, 11)
    width = 0.1 / (len(methods) + 1)
    for j, p in enumerate(protocols):
        ax = fig.add_subplot(1, len(protocols), j + 1)
        for i, m in enumerate(methods):
            v = df[(df["protocol"] == p) & (df["method"] == m)]["iou"].to_numpy()
            if not len(v):
                continue
            counts, _ = np.histogram(np.clip(v, 0, 1), bins=bins)
            ax.bar(bins[:-1] + (i + 0.5) * width + 0.5 * width, counts / len(v), width=width,
                   label=f"{m} (mean {v.mean():.2f})", align="center")
        ax.set_title(p)
        ax.set_xlabel("IoU")
        ax.set_xlim(0, 1)
        if j == 0:
            ax.set_ylabel("fraction of cases")
        ax.legend(fontsize=7)
    fig.suptitle("IoU distribution per method")
    return _save_figure(fig, path)


def plot_time(df: Any, methods: Sequence[str], path: Path) -> Path:
    """Time per case (ms, log scale) per method: box plots side by side, per protocol."""
    from matplotlib.figure import Figure

    protocols = list(dict.fromkeys(df["protocol"]))
    fig = Figure(figsize=(1.4 * len(methods) * len(protocols) + 2, 3.6))
    ax = fig.add_subplot(1, 1, 1)
    data, labels = [], []
    for p in protocols:
        for m in methods:
            v = df[(df["protocol"] == p) & (df["method"] == m)]["ms"].dropna().to_numpy()
            data.append(np.maximum(v, 1e-3) if len(v) else np.array([np.nan]))
            labels.append(f"{m}\n{p}")
    ax.boxplot(data, showfliers=True)
    ax.set_xticks(range(1, len(labels) + 1), labels, fontsize=7)
    ax.set_yscale("log")
    ax.set_ylabel("ms per case")
    ax.set_title("time per case")
    return _save_figure(fig, path)


# ----------------------------------------------------------------------------- pictures
def _open_source(spec: dict[str, Any]) -> Any:
    return DataSpec(**spec["data"]).open()


def _pair(source: Any, spec: dict[str, Any], case: str) -> Any:
    from tmatch.data import make_pair

    key = CaseKey.parse(case)
    return make_pair(source, key.index, protocol=key.protocol, seed=int(spec["seed"]))


def case_panel(pair: Any, records: Sequence[CaseRecord], height: int = 240) -> np.ndarray:
    """Template, image with the true outline, and each method's stored prediction with its IoU,
    side by side: ``(height, W', 3)`` uint8."""
    from tmatch import viz
    from tmatch.match import Match

    truth = pair.image
    if pair.present:
        t = Match(found=True, score=1.0, polygon=pair.polygon, box=None, mask=np.asarray(pair.mask, bool))
        truth = viz.overlay(pair.image, t, color=viz.BLUE)
    images = [pair.template, truth]
    titles = ["template", "truth" if pair.present else "truth: absent"]
    colors = [viz.GREEN, (250, 160, 30), (200, 80, 240), (40, 200, 230)]
    for i, r in enumerate(records):
        m = r.to_match()
        if m.mask.shape != pair.image.shape[:2]:
            raise DataError(f"stored mask of {r.method} on {r.case} is {m.mask.shape}, the pair's image "
                            f"{pair.image.shape[:2]}: the data changed since the run")
        images.append(viz.overlay(pair.image, m, color=colors[i % len(colors)], truth=pair.polygon))
        titles.append(f"{r.method} IoU {r.iou:.2f}" + (" (error)" if r.error else "" if r.found else " (none)"))
    return viz.panel(images, titles, height=height)


@dataclass
class ShownCase:
    """What :func:`show_case` drew: the PNG and each method's stored record."""

    path: Path
    records: list[CaseRecord]
    consistent: bool


def show_case(run: str | os.PathLike, case: str, out: str | os.PathLike | None = None,
              methods: Sequence[str] | None = None) -> ShownCase:
    """Re-render one case from the stored masks (no matcher runs): template, truth and each
    method's overlay with its IoU, written to ``out`` (default ``RUN/show/<case>.png``).

    ``consistent`` says whether the regenerated truth mask gives the recorded IoUs again."""
    from tmatch import geometry
    from tmatch.io import write_image

    store = RunStore(run).require()
    spec = store.read_spec()
    key = CaseKey.parse(case)
    recs = [v[key.case] for v in load_records(run, methods).values() if key.case in v]
    if not recs:
        raise InputError(f"case {key.case!r} has no records in {store.root} "
                         f"(cases look like {spec_cases(spec)[0].case})")
    pair = _pair(_open_source(spec), spec, key.case)
    img = case_panel(pair, recs)
    consistent = all(abs(geometry.iou(r.to_match().mask, pair.mask) - r.iou) < 1e-9 for r in recs)
    path = Path(out) if out is not None else store.root / "show" / f"{safe_name(key.case)}.png"
    write_image(path, img)
    return ShownCase(path, recs, consistent)


def draw_galleries(run: str | os.PathLike, comparison: Comparison, limit: int = 8,
                   source: Any = None) -> dict[str, list[Path]]:
    """PNG panels of up to ``limit`` cases per category under ``RUN/galleries/<category>/``,
    plus one contact sheet ``RUN/galleries/<category>.png`` each. Returns the panel paths."""
    from tmatch import viz
    from tmatch.io import write_image

    store = RunStore(run).require()
    spec = store.read_spec()
    recs = load_records(run, [comparison.a, comparison.b])
    source = source if source is not None else _open_source(spec)
    out: dict[str, list[Path]] = {}
    for name, cases in gallery_categories(comparison).items():
        folder = store.root / "galleries" / name
        if folder.exists():
            shutil.rmtree(folder)
        sheet = folder.with_suffix(".png")
        if sheet.exists():
            sheet.unlink()
        panels, paths = [], []
        for case in _spread(cases, limit):
            img = case_panel(_pair(source, spec, case), [recs[comparison.a][case], recs[comparison.b][case]],
                             height=200)
            viz.text(img, case, (4, img.shape[0] - 8))
            paths.append(write_image(folder / f"{safe_name(case)}.png", img))
            panels.append(img)
        if panels:
            write_image(sheet, viz.grid(panels))
        out[name] = paths
    return out


def _spread(cases: Sequence[str], limit: int) -> list[str]:
    """The first ``limit`` cases taking the protocols in turn (each in its own order), so that
    one protocol's cases do not fill a gallery.

    >>> _spread(["warp-000001", "warp-000002", "seed-000003"], 2)
    ['warp-000001', 'seed-000003']
    """
    queues: dict[str, list[str]] = {}
    for c in cases:
        queues.setdefault(CaseKey.parse(c).protocol, []).append(c)
    out: list[str] = []
    while len(out) < limit and any(queues.values()):
        for q in queues.values():
            if q and len(out) < limit:
                out.append(q.pop(0))
    return out


def gallery_categories(c: Comparison) -> dict[str, list[str]]:
    """``{folder name: cases}`` for the three galleries of a comparison."""
    return {f"{safe_name(c.a)}_better": c.a_better, f"{safe_name(c.b)}_better": c.b_better,
            "both_failed": c.both_failed}


# ------------------------------------------------------------------------------- report
def _stored_run(run: str | os.PathLike) -> tuple[RunStore, dict[str, Any], Any, list[str]]:
    """``(store, spec, records table, methods with records)`` of a run; an error if it has none."""
    store = RunStore(run).require()
    spec = store.read_spec()
    df = load_table(run)
    methods = [m for m in run_methods(store, spec) if (df["method"] == m).any()]
    if not methods:
        raise DataError(f"{store.root} has no records yet")
    return store, spec, df, methods


def write_report(run: str | os.PathLike, compare: Sequence[str] | None = None, gallery: int = 8,
                 plots: bool = True) -> str:
    """Write ``RUN/report.md`` with the describe table, per-protocol summary, plots and galleries
    (from stored records only) and return its text.

    Args:
        compare: the two methods the galleries compare (default: the run's first two).
        gallery: most panels drawn per gallery (0: count only, draw none).
        plots: draw ``plots/iou.png`` and ``plots/time.png``.
    """
    import pandas as pd

    store, spec, df, methods = _stored_run(run)
    n_cases = len(spec_cases(spec))
    data = DataSpec(**spec["data"])
    shard = spec.get("shard") or [0, 1]
    lines = [f"# Benchmark: {store.root.name}", ""]
    lines += [f"- data: {data.describe()} ({spec['n_source']} items"
              + (f", first {spec['limit']}" if spec.get("limit") else "") + ")",
              f"- protocols: {', '.join(spec['protocols'])}; seed {spec['seed']}"
              + (f"; shard {shard[0]}/{shard[1]}" if shard[1] > 1 else "")
              + (f"; merged from {len(spec['merged_from'])} runs" if spec.get("merged_from") else ""),
              f"- cases: {n_cases}; records: " + ", ".join(
                  f"{m} {int((df['method'] == m).sum())}" for m in methods), ""]
    incomplete = [m for m in methods if int((df["method"] == m).sum()) < n_cases]
    if incomplete:
        lines += [f"**Incomplete**: {', '.join(incomplete)} lack some cases (run interrupted? "
                  "run the same command again to resume).", ""]

    lines += ["## Methods (how they were timed)", ""]
    rows = []
    for m in methods:
        s = df[df["method"] == m]
        rows.append([m, ", ".join(sorted(set(s["device"]))), ", ".join(str(v) for v in sorted(set(s["threads"]))),
                     ", ".join(str(v) for v in sorted(set(s["batch"]))), int((s["error"] != "").sum()),
                     f"{s['peak_rss_mb'].max():.0f}",
                     _fmt(s["gpu_mb"].max()) if s["gpu_mb"].notna().any() else "—"])
    lines += [_md_table(["method", "device", "threads", "batch", "errors", "peak RSS MB", "peak GPU MB"], rows), ""]
    lines += ["`ms` is each matcher's own time per case (template preparation included; with "
              "batch > 1 it is the case's share of the batch).", ""]

    desc = describe_table(df, methods)
    with pd.option_context("display.width", 200, "display.max_columns", 50):
        lines += ["## IoU and time (ms)" + (" — cases with the template present" if df["present"].any() else ""),
                  "", "```", desc.to_string(float_format=lambda v: f"{v:.4f}"), "```", ""]

    lines += ["## Per protocol", ""]
    lines += [_md_table(["protocol", "method", "cases", "mean IoU", "success (IoU > 0.5)",
                         "correct-absent", "median ms"],
                        [[r.protocol, r.method, r.cases, _fmt(r.mean_iou), _fmt(r.success, True),
                          _fmt(r.correct_absent, True), _fmt(r.median_ms, digits=1)]
                         for r in protocol_table(df, methods)]), ""]
    lines += ["On negatives (template absent) IoU is 1 when nothing is reported, 0 otherwise.", ""]

    if plots:
        plot_iou(df, methods, store.root / "plots" / "iou.png")
        plot_time(df, methods, store.root / "plots" / "time.png")
        lines += ["## Plots", "", "![IoU](plots/iou.png)", "", "![time](plots/time.png)", ""]

    pair_ab = list(compare) if compare else methods[:2]
    if len(pair_ab) == 2 and pair_ab[0] != pair_ab[1]:
        for m in pair_ab:
            if m not in methods:
                raise InputError(f"--compare: method {m!r} is not in this run ({', '.join(methods)})")
        c = compare_methods(df, *pair_ab)
        lines += [f"## {c.a} vs {c.b}", ""]
        note = ""
        drawn: dict[str, list[Path]] = {}
        if gallery > 0:
            try:
                drawn = draw_galleries(run, c, gallery)
            except (TmatchError, ImportError) as e:
                note = f"(galleries not drawn: {str(e).splitlines()[0]})"
        counts = zip(gallery_categories(c).items(), (f"{c.a} better", f"{c.b} better", "both failed (IoU = 0)"))
        for (folder, cases), title in counts:
            shown = drawn.get(folder, [])
            link = f" — [{len(shown)} shown](galleries/{folder}.png)" if shown else ""
            lines.append(f"- {title}: {len(cases)}{link}")
        lines += [f"- equal IoU: {c.ties}", ""] + ([note, ""] if note else [])
    elif compare:
        raise InputError("--compare needs two different methods, e.g. --compare sift,ncc")
    text = "\n".join(lines)
    write_atomic(store.report_path, text)
    return text


# ------------------------------------------------------------------------ README section
README_START = "<!-- results:start -->"
README_END = "<!-- results:end -->"


def results_section(run: str | os.PathLike, assets: str | os.PathLike, link_base: str,
                    section: str = "results") -> str:
    """A README section generated from a run's stored records: one row per method with mean
    IoU per protocol, success rate (IoU > 0.5) and median ms over the present cases, the
    correct-absent rate on negatives, the IoU-distribution and time figures and up to three
    gallery panels. Figures are copied into ``assets`` and linked as ``link_base/NAME``.
    """

    store, spec, df, methods = _stored_run(run)
    rows_by = {(r.protocol, r.method): r for r in protocol_table(df, methods)}
    protocols = [p for p in dict.fromkeys(df["protocol"])]
    pos_protocols = [p for p in protocols if df[(df["protocol"] == p)]["present"].any()]
    header = (["method"] + [f"mean IoU {p}" for p in pos_protocols] + ["success (IoU > 0.5)"]
              + (["correct-absent"] if "negatives" in protocols else []) + ["median ms"])
    rows = []
    for m in methods:
        s = df[df["method"] == m]
        pos, neg = s[s["present"]], s[~s["present"]]
        row = [f"`{m}`"] + [_fmt(rows_by[(p, m)].mean_iou) if (p, m) in rows_by else "—" for p in pos_protocols]
        row.append(_fmt(float((pos["iou"] > 0.5).mean()) if len(pos) else float("nan"), True))
        if "negatives" in protocols:
            row.append(_fmt(float((~neg["found"]).mean()) if len(neg) else float("nan"), True))
        row.append(_fmt(float(s["ms"].median()), digits=1))
        rows.append(row)
    info = []
    for m in methods:
        s = df[df["method"] == m]
        info.append(f"{m}: {', '.join(sorted(set(s['device'])))}, "
                    f"{', '.join(str(v) for v in sorted(set(s['threads'])))} thread(s), "
                    f"batch {', '.join(str(v) for v in sorted(set(s['batch'])))}")
    data = DataSpec(**spec["data"])
    assets = Path(assets)
    assets.mkdir(parents=True, exist_ok=True)
    flag = "" if section == "results" else f" --section {section}"
    lines = [f"Generated by `tmatch bench report {store.root.name} --readme README.md{flag}` from the stored "
             f"records of one run — data: {data.describe()} ({len(spec_cases(spec))} cases, protocols "
             f"{', '.join(spec['protocols'])}, seed {spec['seed']}).", "",
             _md_table(header, rows), "",
             "Timing: " + "; ".join(info) + ".", ""]
    for name in ("iou.png", "time.png"):
        src = store.root / "plots" / name
        if src.is_file():
            shutil.copyfile(src, assets / name)
            lines += [f"![{name[:-4]}]({link_base}/{name})", ""]
    gal = store.root / "galleries"
    if gal.is_dir():
        for src in sorted(gal.glob("*.png"))[:3]:
            shutil.copyfile(src, assets / f"gallery-{src.name}")
            lines += [f"Gallery — {src.stem.replace('_', ' ')}:", "",
                      f"![{src.stem}]({link_base}/gallery-{src.name})", ""]
    return "\n".join(lines).rstrip() + "\n"


def update_readme(run: str | os.PathLike, readme: str | os.PathLike,
                  assets: str | os.PathLike | None = None, section: str = "results") -> Path:
    """Replace the text between ``<!-- SECTION:start -->`` and ``<!-- SECTION:end -->`` in
    ``readme`` (default section ``results``) with :func:`results_section` (figures go to
    ``docs/SECTION`` beside it)."""
    readme = Path(readme)
    if not readme.is_file():
        raise InputError(f"README not found: {readme}")
    text = readme.read_text()
    start, end = f"<!-- {section}:start -->", f"<!-- {section}:end -->"
    if start not in text or end not in text:
        raise InputError(f"{readme} has no '{start}' ... '{end}' markers")
    assets = Path(assets) if assets is not None else readme.parent / "docs" / section
    link = os.path.relpath(assets, readme.parent)
    body = results_section(run, assets, link, section)
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    write_atomic(readme, f"{head}{start}\n{body}{end}{tail}")
    return readme


def check_compare(run: str | os.PathLike, methods: Sequence[str], compare: Sequence[str] | None) -> list[str] | None:
    """``compare`` normalised, checked against ``methods`` and those already stored in ``run``
    (before anything is computed).

    Raises:
        InputError: not two different methods of the run.
    """
    if compare is None:
        return None
    store = RunStore(run)
    known = list(dict.fromkeys([*(store.read_spec().get("methods", []) if store.exists() else []),
                                *(str(m).strip().lower() for m in methods)]))
    compare = [str(c).strip().lower() for c in compare]
    bad = [c for c in compare if c not in known]
    if len(compare) != 2 or compare[0] == compare[1] or bad:
        raise InputError(f"--compare needs two different methods of this run "
                         f"({', '.join(known)}), got {','.join(compare)}")
    return compare


def finish_run(run: str | os.PathLike, text_masks: bool = False, compare: Sequence[str] | None = None,
               gallery: int = 8) -> str:
    """Write the tables (:func:`write_tables`) and the report (:func:`write_report`) of a run
    from its stored records; returns the report's text."""
    write_tables(run, text_masks=text_masks)
    return write_report(run, compare=compare, gallery=gallery)
