"""``tmatch data``: the embedded sample set, dataset statistics and pictures of pairs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tmatch.cli._options import Seed

data_app = typer.Typer(
    help="Datasets for training and benchmarks: the offline sample set, stats, pictures of pairs.\n\n"
         "Examples:\n\n"
         "  tmatch data samples ./samples          # COCO folder from scikit-image photos\n\n"
         "  tmatch data stats ./coco/val2017 --annotations ./coco/annotations/instances_val2017.json\n\n"
         "  tmatch data show --protocol warp --count 6 --out pairs.png",
    no_args_is_help=True,
)

Source = Annotated[Path | None, typer.Argument(
    help="COCO folder or instances .json, a folder of photos, (with --kind cutouts) RGBA PNGs, or "
         "'screens' (web pages rendered at display scales 1-2). Default: the embedded sample set.")]
Annotations = Annotated[Path | None, typer.Option(
    "--annotations", "-a", help="COCO instances file (SOURCE is then the image folder).")]
Kind = Annotated[str, typer.Option("--kind", help="auto, coco, folder, cutouts, samples or screens.")]
Target = Annotated[str, typer.Option("--target", help="COCO target: box or mask (segmentation).")]
MaxSide = Annotated[int, typer.Option("--max-side", help="Downscale photos to this longest side.", min=64)]


def samples_cmd(
    out_dir: Annotated[Path, typer.Argument(help="Folder to write (images/ and instances.json).")],
) -> None:
    """Write the embedded sample set (scikit-image photos, hand-drawn boxes and polygons) as a
    COCO folder. No download.

    Examples:

      tmatch data samples ./samples

      tmatch data stats ./samples
    """
    import json

    from tmatch.data import write_samples
    from tmatch.outputs import Output, check_outputs

    check_outputs({"OUT_DIR": Output(out_dir, "folder")})
    out = write_samples(out_dir)
    coco = json.loads((out / "instances.json").read_text())
    typer.echo(f"wrote {len(coco['images'])} photos, {len(coco['annotations'])} annotations, "
               f"{len(coco['categories'])} categories to {out}")


def stats_cmd(
    source: Source = None,
    annotations: Annotations = None,
    kind: Kind = "auto",
    target: Target = "box",
    max_side: MaxSide = 640,
    train_size: Annotated[float, typer.Option(help="Share of photos in the train split.", min=0.0, max=1.0)] = 0.9,
    seed: Seed = 0,
) -> None:
    """Count pairs, photos and labels of a dataset, what was skipped, and the split sizes.

    Examples:

      tmatch data stats

      tmatch data stats ./val2017 --annotations instances_val2017.json --target mask
    """
    from collections import Counter

    from tmatch.data import open_source, split
    from tmatch.data.stats import usable_counts
    from tmatch.outputs import check_number

    check_number(train_size, "--train-size", lo=0, hi=1)
    src = open_source(source, annotations=annotations, kind=kind, target=target, max_side=max_side)
    usable = usable_counts(src)
    typer.echo(f"{src.name}: {usable.pairs} pairs from {usable.photos} photos"
               + (f" ({usable.unreadable} unreadable photo(s) not counted)" if usable.unreadable else ""))
    labels = Counter(getattr(r, "label", "") for r in getattr(src, "records", []))
    if labels:
        top = ", ".join(f"{k or '?'} {n}" for k, n in labels.most_common(12))
        typer.echo(f"labels ({len(labels)}): {top}")
    tr, va = ([i for i in part if src.image_key(i) not in usable.unreadable_keys]
              for part in split(src, train_size=train_size, seed=seed))
    typer.echo(f"split (train_size={train_size}, seed={seed}): {len(tr)} train / {len(va)} valid pairs")
    typer.echo(src.skipped.summary() or "skipped: nothing")


def show_cmd(
    source: Source = None,
    annotations: Annotations = None,
    kind: Kind = "auto",
    target: Target = "box",
    protocol: Annotated[str, typer.Option("--protocol", "-p",
                                          help="seed, homography, photometric, warp, negatives, rotate, zoom-out, "
                                               "zoom-in, perspective, screen (screens only); join with +.")] = "warp",
    index: Annotated[int, typer.Option(help="First pair index.", min=0)] = 0,
    count: Annotated[int, typer.Option(help="Number of pairs drawn.", min=1, max=64)] = 4,
    seed: Seed = 0,
    out: Annotated[Path, typer.Option("--out", "-o", help="PNG/JPG to write.")] = Path("pairs.png"),
) -> None:
    """Draw pairs (template | image with the true mask and polygon) to an image file.

    Examples:

      tmatch data show --protocol warp --count 6 --out warp.png

      tmatch data show ./photos --protocol homography+photometric --index 10

      tmatch data show screens --protocol screen --count 6 --out screens.png
    """
    from tmatch import io
    from tmatch.data import make_pair, open_source
    from tmatch.data.show import pairs_sheet
    from tmatch.outputs import Output, check_outputs

    check_outputs({"--out": Output(out, "image")}, {"SOURCE": _local(source), "--annotations": annotations})
    src = open_source(source, annotations=annotations, kind=kind, target=target)
    n = len(src)
    pairs = [make_pair(src, (index + k) % n, protocol, seed=seed) for k in range(min(count, n))]
    io.write_image(out, pairs_sheet(pairs))
    typer.echo(f"wrote {len(pairs)} {pairs[0].meta.protocol} pairs to {out}")


def _local(source: Path | None) -> Path | None:
    """``source`` when it names a file or folder (not ``samples`` or ``screens``)."""
    return source if source is not None and source.exists() else None


def register(app: typer.Typer) -> None:
    """Add ``tmatch data samples | stats | show``."""
    data_app.command("samples")(samples_cmd)
    data_app.command("stats")(stats_cmd)
    data_app.command("show")(show_cmd)
    app.add_typer(data_app, name="data")
