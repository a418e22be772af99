"""Batch matching: templates × images from files, folders or globs into one results file.

``tmatch match icons/ shots/ --save results.jsonl`` runs :func:`run_batch`; the rows
(:class:`Row`) go to a :class:`ResultsFile` (``.jsonl``, ``.csv``, ``.parquet`` or COCO
``.json``) as each image is done, so a killed run resumes where it stopped; ``--shard K/N``
splits the images over a Slurm array and :func:`merge_results` joins the shards' files.
See ``docs/batch.md``.

>>> from tmatch.batch import expand, run_batch, ResultsFile, merge_results  # doctest: +SKIP
"""

from tmatch.batch.inputs import IMAGE_SUFFIXES, expand, natural_key, shard
from tmatch.batch.results import FORMATS, ResultsFile, coco_results, merge_results, read_results, write_results
from tmatch.batch.rows import COLUMNS, Row
from tmatch.batch.runner import Summary, ids, match_templates, overlay_names, run_batch

__all__ = ["COLUMNS", "FORMATS", "IMAGE_SUFFIXES", "ResultsFile", "Row", "Summary", "coco_results", "expand",
           "ids", "match_templates", "merge_results", "natural_key", "overlay_names", "read_results",
           "run_batch", "shard", "write_results"]
