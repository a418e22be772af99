"""``tmatch match TEMPLATES IMAGES...``: find templates in images — one pair, or folders and
globs into one results file (:mod:`tmatch.batch`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from tmatch.cli._options import (
    MethodOrWeights,
    Roi,
    SearchRegion,
    Weights,
    given_options,
    method_for,
    pool_threads,
    with_matcher_flags,
)
from tmatch.errors import InputError


def match_cmd(
    inputs: Annotated[list[str], typer.Argument(
        help="TEMPLATES then IMAGES: each a file, a folder (its images) or a quoted glob; several "
             "IMAGES allowed. With --merge: the shards' results files.", show_default=False)],
    method: MethodOrWeights = None,
    roi: Roi = None,
    region: SearchRegion = None,
    out: Annotated[Optional[Path], typer.Option(
        "--out", "-o", help="One pair: write an overlay (.png, .jpg, ...) here.")] = None,
    json_out: Annotated[Optional[str], typer.Option(
        "--json", help="One pair: write the result(s) as JSON here ('-': stdout).")] = None,
    all_: Annotated[bool, typer.Option("--all", help="One pair: report every instance (NMS), not just the best.")] = False,
    max_instances: Annotated[int, typer.Option(help="With --all: most instances reported.", min=1)] = 10,
    min_score: Annotated[Optional[float], typer.Option(help="With --all: drop instances scoring below.")] = None,
    weights: Weights = None,
    save: Annotated[Optional[Path], typer.Option(
        "--save", help="Results file, one row per template x image: .jsonl, .csv, .parquet or .json "
                       "(COCO results). Rows already in it are not redone (resume).")] = None,
    overlays: Annotated[Optional[Path], typer.Option(
        "--overlays", help="Folder for one overlay PNG per image (every template drawn).")] = None,
    shard: Annotated[Optional[str], typer.Option(
        "--shard", help="K/N: only images with index % N == K (0-based), e.g. a Slurm array task; "
                        "join the files with --merge.")] = None,
    resume: Annotated[bool, typer.Option(
        "--resume/--no-resume", help="Keep the rows --save already holds (--no-resume: start afresh).")] = True,
    coco_gt: Annotated[Optional[Path], typer.Option(
        "--coco-gt", help="With --save X.json: take image and category ids from this COCO ground truth "
                          "(images by file name, templates by stem = category name).")] = None,
    merge: Annotated[bool, typer.Option(
        "--merge", help="Join the results files given as INPUTS into --save, then stop.")] = False,
    progress: Annotated[bool, typer.Option(
        "--progress/--no-progress", help="Progress bar with rate and ETA (when stderr is a terminal).")] = True,
    fail_if_absent: Annotated[bool, typer.Option(
        "--fail-if-absent", help="Exit 1 when the template is absent (with --all: no instance; a batch: "
                                 "any row matched now), for scripts and tests.")] = False,
    **flags: Any,
) -> None:
    """Find TEMPLATES in IMAGES. One pair prints one summary line (found, score, box, ms); more
    (folders, globs) print a line per row, or with --save write one results file.

    Examples:

      tmatch match logo.png shelf.jpg --out overlay.png --json result.json

      tmatch match icons/ screenshots/ --save results.jsonl --overlays runs/overlays

      tmatch match "icons/*.png" shots/ --save results.csv -m neural --rotations full --threads 2 --device cpu

      tmatch match icons/ shots/ --save runs/part-3.jsonl --shard 3/8      (one Slurm array task)

      tmatch match --merge runs/part-*.jsonl --save runs/all.jsonl

      tmatch match crops/ samples/images --save r.json --coco-gt samples/instances.json   (COCOeval-ready)

      tmatch match ref.jpg scene.jpg --roi 120,80,64,48 -m ncc --threshold 0.7

      tmatch match button.png screen.png --region 0,0,1280,120   (search the top bar only)

      tmatch match coin.png coins.png -m ncc --all --min-score 0.7 --json -

      tmatch match logo.png shelf.jpg --weights runs/neural-seg/best.safetensors   (the file names its matcher)

      tmatch match button.png screen.png --fail-if-absent && echo there     (exit 1 when absent)
    """
    from tmatch.errors import InputError
    from tmatch.registry import DEFAULT_MATCHER
    from tmatch.threads import limit_threads

    if merge:
        from tmatch.batch import merge_results

        if save is None:
            raise InputError("--merge needs --save OUT (the merged results file)")
        path, n = merge_results(inputs, save, coco_gt)
        typer.echo(f"merged {n} row(s) from {len(inputs)} file(s) into {path}")
        return
    if len(inputs) < 2:
        raise InputError("give TEMPLATES and IMAGES (files, folders or globs)")
    method = method_for(method, weights, DEFAULT_MATCHER)
    options = given_options(method, flags)
    threads = pool_threads(method, flags)
    if weights is not None:
        options["weights"] = str(weights)
    _check_before_work(inputs, out, json_out, save, overlays, min_score)
    from tmatch.region import parse_region

    area = None if region is None else parse_region(region, "--region")
    batch = save is not None or overlays is not None or shard is not None or coco_gt is not None or \
        any(not Path(s).is_file() for s in inputs) or len(inputs) > 2
    if batch:
        for flag, given in (("--out", out), ("--json", json_out), ("--all", all_ or None), ("--roi", roi)):
            if given is not None:
                raise InputError(f"{flag} works on one pair; with folders or globs use --save and --overlays")
        with limit_threads(threads):
            found = _run_batch(inputs[0], inputs[1:], method, options, save, overlays, shard, resume, progress,
                               coco_gt, area)
    else:
        with limit_threads(threads):
            found = _match_pair(Path(inputs[0]), Path(inputs[1]), method, options, roi, out, json_out, all_,
                                max_instances, min_score, area)
    if fail_if_absent and not found:
        raise typer.Exit(1)


def _check_before_work(inputs: list[str], out: Path | None, json_out: str | None, save: Path | None,
                       overlays: Path | None, min_score: float | None) -> None:
    """Every output path and number judged before any work: an output that is an input (the
    photo overwritten by its own overlay), an existing folder given as a file, an unknown image
    suffix, a NaN score."""
    from tmatch.outputs import Output, check_number, check_outputs

    check_number(min_score, "--min-score")
    names = ["TEMPLATES"] + [f"IMAGES ({s})" for s in inputs[1:]]
    read = {(name if len(found) == 1 else f"{name} {q}"): q
            for name, s in zip(names, inputs) for found in [_read_roots(s)] for q in found}
    check_outputs({"--out": Output(out, "image"),
                   "--json": Output(None if json_out == "-" else json_out, "json"),
                   "--save": Output(save, "results"), "--overlays": Output(overlays, "folder")}, read)


def _read_roots(spec: str) -> list[Path]:
    """What an input spec reads: the file or folder itself, or the files a glob matches (none for
    a spec naming nothing: judged later, with its own message)."""
    from tmatch.batch import expand

    p = Path(spec).expanduser()
    if p.exists():
        return [p]
    if set("*?[") & set(spec):
        try:
            return expand([spec])
        except InputError:
            return []
    return []


def _match_pair(template: Path, image: Path, method: str, options: dict, roi: str | None, out: Path | None,
                json_out: str | None, all_: bool, max_instances: int, min_score: float | None,
                region: tuple[int, int, int, int] | None = None) -> bool:
    """Match one pair, say and write the result; whether the template was found."""
    from tmatch import io, viz
    from tmatch.files import atomic_write
    from tmatch.registry import load_matcher

    tpl = io.read_image(template, "template")
    if roi is not None:
        tpl = io.crop(tpl, io.parse_roi(roi), "ROI")
    img = io.read_image(image, "image")
    matcher = load_matcher(method, **options)
    say = (lambda s: typer.echo(s, err=True)) if json_out == "-" else typer.echo
    where = {} if region is None else {"region": region}
    if all_:
        results = matcher.match_all(tpl, img, max_instances=max_instances, min_score=min_score, **where)
        say(f"{method}: {len(results)} instance(s)")
        for r in results:
            say("  " + r.summary())
    else:
        results = [matcher.match(tpl, img, **where)]
        say(results[0].summary())
    if json_out is not None:
        payload = json.dumps([r.to_dict() for r in results] if all_ else results[0].to_dict())
        if json_out == "-":
            sys.stdout.write(payload + "\n")
        else:
            atomic_write(json_out, payload)
    if out is not None:
        io.write_image(out, viz.overlay(img, results, label=method))
    return any(r.found for r in results)


def _run_batch(template_spec: str, image_specs: list[str], method: str, options: dict, save: Path | None,
               overlays: Path | None, shard: str | None, resume: bool, progress: bool,
               coco_gt: Path | None, region: tuple[int, int, int, int] | None = None) -> bool:
    """Run the batch; whether every row matched now found its template."""
    from tmatch.batch import ResultsFile, expand, ids, run_batch
    from tmatch.batch.inputs import shard as shard_of
    from tmatch.bench.run import parse_shard
    from tmatch.errors import InputError
    from tmatch.registry import load_matcher

    k, n = parse_shard(shard)
    templates = ids(expand([template_spec], "templates"))
    images = shard_of(ids(expand(image_specs, "images")), k, n)
    if coco_gt is not None and save is None:
        raise InputError("--coco-gt needs --save X.json")
    matcher = load_matcher(method, **options)
    asked = {"method": method, "options": options, **({"region": list(region)} if region else {})}
    config = json.loads(json.dumps(asked, sort_keys=True, default=str))
    results = ResultsFile(save, resume=resume, coco_gt=coco_gt, config=config) if save is not None else None
    on_rows = None
    if save is None:
        def on_rows(rows):
            for r in rows:
                typer.echo(f"{r.template} {r.image} " + (f"error: {r.error}" if r.error else r.match().summary()))
    try:
        with _progress_bar(len(images), f"{method}: {len(templates)} template(s) x", progress) as (tick, warn):
            summary = run_batch(matcher, templates, images, results, overlays, on_rows=on_rows, warn=warn,
                                progress=tick, region=region)
    except BaseException:
        if results is not None:
            results.release()
        raise
    if results is not None:
        results.close()
    where = f" -> {save}" if save is not None else ""
    typer.echo(summary.line() + where, err=save is None)
    return summary.rows - summary.errors - summary.found == 0


class _progress_bar:
    """A rich progress bar over images on stderr (rate and ETA), or nothing when stderr is not a
    terminal; yields ``(tick(n_done), warn(line))``."""

    def __init__(self, total: int, label: str, enabled: bool):
        self.total, self.label = total, label
        self.enabled = enabled and sys.stderr.isatty()
        self.bar: Any = None

    def __enter__(self):
        if not self.enabled:
            return (lambda n: None), (lambda line: typer.echo(line, err=True))
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[rate]}"),
                            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                            console=Console(stderr=True))
        self.bar.__enter__()
        task = self.bar.add_task(f"{self.label} {self.total} image(s)", total=self.total, rate="")

        def tick(n: int) -> None:
            speed = self.bar.tasks[0].speed
            self.bar.update(task, completed=n, rate=f"{speed:.2f} img/s" if speed else "")

        return tick, (lambda line: self.bar.console.print(line, markup=False, highlight=False, soft_wrap=True))

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)


def register(app: typer.Typer) -> None:
    app.command("match")(with_matcher_flags(match_cmd))
