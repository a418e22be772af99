"""``tmatch bench``: run matchers on a pair source and report; ``show``, ``report``, ``merge``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from tmatch.cli._options import Methods, Seed, Weights, WeightsFor, matcher_options, split_names, weights_for
from tmatch.registry import DEFAULT_MATCHER

bench_app = typer.Typer(
    no_args_is_help=False,
    add_completion=False,
    pretty_exceptions_enable=False,
)

Compare = Annotated[Optional[str], typer.Option(
    "--compare", help="Two methods A,B for the galleries (A better / B better / both failed); "
                      "default: the first two.")]
Gallery = Annotated[int, typer.Option("--gallery", min=0, help="Most PNG panels per gallery (0: none).")]
TextMasks = Annotated[bool, typer.Option(
    "--text-masks", help="Also write masks/<method>.txt in the original 'H,W:start length' format.")]


@bench_app.callback(invoke_without_command=True)
def bench_cmd(
    ctx: typer.Context,
    data: Annotated[Optional[Path], typer.Option(
        "--data", help="COCO-format folder, photo folder, or 'screens' (web pages rendered at "
                         "display scales 1-2; needs chromium) (default: the embedded sample set).")] = None,
    coco: Annotated[Optional[Path], typer.Option("--coco", help="COCO annotation JSON (with --images).")] = None,
    images: Annotated[Optional[Path], typer.Option("--images", help="Image folder of --coco.")] = None,
    methods: Methods = DEFAULT_MATCHER,
    protocols: Annotated[str, typer.Option(
        "--protocols", help="Comma-separated: seed, homography, photometric, warp, negatives, rotate, "
                             "zoom-out, zoom-in, perspective, screen (--data screens).")] = "seed,warp,negatives",
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder (resumed if it exists).")] = Path("runs/bench"),
    limit: Annotated[Optional[int], typer.Option("--limit", min=1, help="Use the first N items of the source.")] = None,
    seed: Seed = 0,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Processes for CPU matchers.")] = 1,
    threads: Annotated[Optional[int], typer.Option(
        "--threads", min=1, help="Time every method on the CPU with N OpenCV/torch/ONNX threads "
                                 "(neural ones too, unless --device cuda). Default: 1 per worker "
                                 "with --workers > 1, else the libraries' default.")] = None,
    device: Annotated[Optional[str], typer.Option(
        "--device", help="auto, cpu or cuda for the neural matchers (default auto; cpu with --threads).")] = None,
    batch: Annotated[int, typer.Option("--batch", min=1, help="Batch size of matchers on a GPU.")] = 16,
    shard: Annotated[Optional[str], typer.Option(
        "--shard", help="I/N: run only items with index % N == I (0-based); merge with `bench merge`.")] = None,
    weights: Weights = None,
    weights_for_: WeightsFor = None,
    compare: Compare = None,
    gallery: Gallery = 8,
    text_masks: TextMasks = False,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Progress bar with ETA.")] = True,
) -> None:
    """Benchmark matchers case by case: run METHODS on every case of a pair source, store records
    and RLE masks in RUN (--out), write and print RUN/report.md with plots and galleries. An
    interrupted run resumes where it stopped.

    Examples:

      tmatch bench --methods sift,ncc --out runs/sample

      tmatch bench --coco instances_val2017.json --images val2017 --methods sift,neural --limit 2000

      tmatch bench --data photos/ --protocols warp,negatives --workers 2 --threads 1 --out runs/photos

      tmatch bench --protocols seed,rotate,zoom-out,zoom-in,perspective --methods sift,neural

      tmatch bench --data screens --protocols seed,screen,negatives --methods ncc,neural --out runs/screens

      tmatch bench --methods neural,dual-unet --weights-for dual-unet=runs/dual/best.safetensors

      tmatch bench --coco ann.json --images imgs --shard 3/8 --out runs/coco/shard-3

      tmatch bench report runs/sample --compare ncc,sift

      tmatch bench show runs/sample warp-000004

      tmatch bench merge runs/coco/shard-* --out runs/coco/all
    """
    if ctx.invoked_subcommand is not None:
        return
    from tmatch.registry import require_extra

    require_extra("bench")  # a light install says what to install before any work starts
    from tmatch.bench.report import check_compare, finish_run
    from tmatch.bench.run import DataSpec, parse_shard, run_bench, terminate_on_sigterm
    from tmatch.outputs import Output, check_outputs

    check_outputs({"--out": Output(out, "folder")},
                  {"--data": data if data is not None and data.exists() else None, "--coco": coco,
                   "--images": images, "--weights": weights})
    spec = DataSpec.from_options(data, coco, images)
    pair = check_compare(out, split_names(methods), _pair_names(compare))
    with terminate_on_sigterm():
        res = run_bench(out, split_names(methods), split_names(protocols), data=spec, limit=limit,
                        seed=seed, shard=parse_shard(shard), workers=workers, threads=threads,
                        batch=batch, device=device, options=matcher_options(weights),
                        method_options=weights_for(weights_for_), progress=progress)
        typer.echo(finish_run(res.run, text_masks=text_masks, compare=pair, gallery=gallery))
    typer.echo(f"{res.n_cases} cases x {len(res.methods)} methods: {res.computed} computed, "
               f"{res.skipped} already stored, {res.seconds:.1f} s -> {res.run}")


@bench_app.command("report")
def report_cmd(
    run: Annotated[Path, typer.Argument(help="Run folder.")],
    compare: Compare = None,
    gallery: Gallery = 8,
    text_masks: TextMasks = False,
    readme: Annotated[Optional[Path], typer.Option(
        help="Also write the results table and figures into this README, between its "
             "<!-- SECTION:start --> / <!-- SECTION:end --> markers (figures to docs/SECTION/).")] = None,
    section: Annotated[str, typer.Option(
        help="With --readme: the README section's marker name (one README can hold several runs).")
    ] = "results",
) -> None:
    """Redraw RUN's tables, report, plots and galleries from its stored records (no matching).

    Examples:

      tmatch bench report runs/sample

      tmatch bench report runs/sample --compare ncc,sift --gallery 20 --text-masks

      tmatch bench report runs/heldout --readme README.md   # the README's results section

      tmatch bench report runs/protocols --readme README.md --section protocols
    """
    from tmatch.bench.report import write_report, write_tables

    write_tables(run, text_masks=text_masks)
    typer.echo(write_report(run, compare=_pair_names(compare), gallery=gallery))
    if readme is not None:
        from tmatch.bench.report import update_readme

        typer.echo(f"results written into {update_readme(run, readme, section=section)}")


@bench_app.command("show")
def show_cmd(
    run: Annotated[Path, typer.Argument(help="Run folder.")],
    case: Annotated[str, typer.Argument(help="Case id, e.g. warp-000012 (see results.csv).")],
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="PNG to write (default RUN/show/CASE.png).")] = None,
    methods: Annotated[Optional[str], typer.Option("--methods", help="Only these methods.")] = None,
) -> None:
    """Re-render one case from stored masks: template, truth, each method's overlay and IoU.

    Examples:

      tmatch bench show runs/sample seed-000003

      tmatch bench show runs/sample warp-000010 --methods sift --out sift.png
    """
    from tmatch.bench.report import show_case
    from tmatch.outputs import Output, check_outputs

    check_outputs({"--out": Output(out, "image")}, {"RUN": run})
    shown = show_case(run, case, out=out, methods=split_names(methods) if methods else None)
    for r in shown.records:
        typer.echo(f"{r.method}: iou={r.iou:.3f} found={r.found} score={r.score:.3f} ms={r.ms:.1f}"
                   + (f" error={r.error}" if r.error else ""))
    if not shown.consistent:
        typer.echo("warning: the regenerated truth gives other IoUs than recorded (data changed?)", err=True)
    typer.echo(str(shown.path))


@bench_app.command("merge")
def merge_cmd(
    runs: Annotated[list[Path], typer.Argument(help="Run folders of the shards.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="New folder for the merged run.")],
    compare: Compare = None,
    gallery: Gallery = 8,
    text_masks: TextMasks = False,
) -> None:
    """Merge sharded runs (same data, protocols, seed, limit) into one run with its report.

    Examples:

      tmatch bench merge runs/coco/shard-0 runs/coco/shard-1 --out runs/coco/all
    """
    from tmatch.bench.merge import merge_runs
    from tmatch.bench.report import write_report, write_tables
    from tmatch.outputs import Output, check_outputs

    check_outputs({"--out": Output(out, "folder")}, {f"RUN {k + 1}": r for k, r in enumerate(runs)})
    merged = merge_runs(runs, out)
    write_tables(merged, text_masks=text_masks)
    typer.echo(write_report(merged, compare=_pair_names(compare), gallery=gallery))


def _pair_names(text: str | None) -> list[str] | None:
    if text is None:
        return None
    names = split_names(text)
    if len(names) != 2:
        from tmatch.errors import InputError

        raise InputError(f"--compare needs two methods A,B, got {text!r}")
    return [n.lower() for n in names]


def register(app: typer.Typer) -> None:
    """Add ``tmatch bench`` (a group: run by default; ``show``, ``report``, ``merge``)."""
    app.add_typer(bench_app, name="bench")
