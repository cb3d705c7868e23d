"""Accuracy in the report: one data set at a time (never pooled), models compared paired on the same
images, our SINet / ExtremeC3Net beside their papers, the designs' learning curves.

- :func:`headline_set` - the set the summary and the accuracy-vs-latency plots use: eg1800 test when
  measured (``bench.run.plan.HEADLINE_SET``), else the first of the plan's sets that was.
- :func:`accuracy_by_model` - one accuracy row per model on a set: per design every weights measured
  except random (the suite's own training first, so seg_matting's seed weights are a row of their own).
- :func:`paired_comparisons` - paired bootstrap of the mIoU difference of every two models scored on
  the same images (``per_image_iou_u16`` / ``stems_sha1`` of ``bench.measure.accuracy.EvalRecord``).
- :func:`per_set_table`, :func:`literature_table`, :func:`paired_section`, :func:`learning_curves`.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np
import pandas as pd

from bench import columns as C
from bench.run.plan import ACCURACY_SETS

from .doc import Doc
from .fmt import NOT_MEASURED, _finite, _fmt, _fmt_miou
from .rows import _at_size, _col, _rows, _text, input_label

# the suite's own recipe first (the same for every design), then a published checkpoint; random never
WEIGHTS_PREFERENCE = ("trained", "seed", "finetuned")
CONVENTION = ("person-class IoU per image at the image's own size (prediction resized back bilinearly, "
              "threshold 0.5), mean over images, 95% percentile-bootstrap CI over images")
# the papers' EG1800 figures, as quoted in docs/training.md ("IoU conventions") from the authors' README
PAPER_MIOU = {"sinet": (0.952, "SINet: EG1800 IoU 95.2 (authors' README; 95.29 in an earlier version)"),
              "extremec3": (0.9498, "ExtremeC3Net: EG1800 IoU 94.98 (authors' README)")}
PAIRED_BOOT = 4000


def set_label(dataset: str, split: str) -> str:
    return f"{dataset} {split}".strip()


def _candidates(df: pd.DataFrame) -> pd.DataFrame:
    acc = _rows(df, "accuracy")
    if acc.empty:
        return acc
    return acc[_col(acc, C.MIOU).notna() & (_text(acc, "weights") != "random")]


def headline_set(df: pd.DataFrame) -> Optional[tuple[str, str]]:
    """(dataset, split) of the summary's accuracy: the first of the plan's sets with a measurement,
    else the set most models were measured on; None without accuracy rows."""
    acc = _candidates(df)
    if acc.empty:
        return None
    present = list(zip(_text(acc, "dataset"), _text(acc, "split")))
    for s in ACCURACY_SETS:
        if s in present:
            return s
    models: dict[tuple[str, str], set] = {}
    for arch, p in zip(_text(acc, "arch"), present):
        models.setdefault(p, set()).add(arch)
    return max(models, key=lambda p: (len(models[p]), p[1] != "all", p))


def _weights_rank(w: str) -> tuple[int, str]:
    return (WEIGHTS_PREFERENCE.index(w) if w in WEIGHTS_PREFERENCE else len(WEIGHTS_PREFERENCE), w)


def model_name(arch: str, weights: str, first: bool) -> str:
    """The name a model has in the report: the design's name for its preferred weights, else with
    the weights said (``seg_matting (seed weights)``)."""
    if first:
        return arch
    return f"{arch} ({Path(weights).stem if '/' in weights else weights} weights)"


def accuracy_by_model(df: pd.DataFrame, size: int, dataset: Optional[str] = None,
                      split: Optional[str] = None) -> pd.DataFrame:
    """One accuracy row per (arch, weights) on one set (default :func:`headline_set`), designs at
    ``size`` when measured there, with ``name`` (see :func:`model_name`) and ``rank`` (0 = the arch's
    preferred weights). Empty when nothing was measured on that set."""
    acc = _candidates(df)
    if acc.empty:
        return pd.DataFrame()
    # a model's name and rank come from every set it was measured on, so a set where only the seed
    # weights were measured (the full-HSD reproduction) does not name them after the design alone
    ranks = {a: sorted(set(_text(g, "weights")), key=_weights_rank) for a, g in acc.groupby(_text(acc, "arch"))}
    if dataset is None:
        dataset, split = headline_set(df) or ("", "")
    acc = acc[_text(acc, "dataset") == dataset]
    if split is not None and "split" in acc.columns:
        acc = acc[_text(acc, "split") == split]
    if (_col(acc, "input_size") == size).any():
        acc = _at_size(acc, size)
    out = []
    for arch, g in acc.groupby(_text(acc, "arch"), sort=False):
        for w in sorted(set(_text(g, "weights")), key=_weights_rank):
            i = ranks[str(arch)].index(w)
            gw = g[_text(g, "weights") == w]
            # a whole-set row (e.g. the full-HSD reproduction of a checkpoint) never replaces a split
            gw = gw.assign(_all=_text(gw, "split") == "all").sort_values("_all", ascending=False, kind="stable")
            r = gw.drop(columns="_all").iloc[-1].to_dict()
            r.update(name=model_name(str(arch), w, i == 0), rank=i, input=input_label(gw, size))
            out.append(r)
    return pd.DataFrame(out)


# ----------------------------------------------------------------------------- paired comparisons

def _per_image(r) -> Optional[np.ndarray]:
    from bench.measure.accuracy import decode_per_image
    text = r.get("per_image_iou_u16")
    if not isinstance(text, str) or not text:
        return None
    try:
        return decode_per_image(text)
    except ValueError:
        return None


def paired_comparisons(models: pd.DataFrame, n_boot: int = PAIRED_BOOT) -> pd.DataFrame:
    """Every two models (rows of :func:`accuracy_by_model`) scored on the same images: the paired
    bootstrap of their mIoU difference, ``a`` the more accurate. Columns a, b, n_images, diff_miou,
    diff_ci_low, diff_ci_high, significant. Pairs without per-image data are left out."""
    from bench.measure.accuracy import paired_bootstrap_iou
    cols = ["a", "b", "n_images", "diff_miou", "diff_ci_low", "diff_ci_high", "significant"]
    if models.empty:
        return pd.DataFrame(columns=cols)
    data = {r["name"]: (_per_image(r), str(r.get("stems_sha1") or "")) for _, r in models.iterrows()}
    order = list(models.sort_values(C.MIOU, ascending=False)["name"])
    out = []
    for i, a in enumerate(order):
        for b in order[i + 1:]:
            (ia, sa), (ib, sb) = data[a], data[b]
            if ia is None or ib is None or not sa or sa != sb or ia.shape != ib.shape:
                continue
            rec = paired_bootstrap_iou(ia, ib, n_boot=n_boot)
            out.append({"a": a, "b": b, "n_images": rec.n_images, "diff_miou": rec.diff_miou,
                        "diff_ci_low": rec.diff_ci_low, "diff_ci_high": rec.diff_ci_high,
                        "significant": rec.significant})
    return pd.DataFrame(out, columns=cols)


def told_apart(paired: pd.DataFrame, a: str, b: str) -> Optional[bool]:
    """Whether the paired comparison resolves ``a`` vs ``b`` (None: no paired comparison of them)."""
    if paired.empty:
        return None
    hit = paired[((paired["a"] == a) & (paired["b"] == b)) | ((paired["a"] == b) & (paired["b"] == a))]
    return None if hit.empty else bool(hit["significant"].iloc[0])


def _fmt_diff(r) -> str:
    return f"{r['diff_miou']:+.3f} [{r['diff_ci_low']:+.3f}, {r['diff_ci_high']:+.3f}]"


def seed_verdict(models: pd.DataFrame, a: str, b: str, diff: float, spreads: Mapping[str, Any]) -> str:
    """Whether the mIoU difference of models ``a`` and ``b`` (names of ``models``) exceeds the
    training-seed spread (``spreads``: ``bench.train.checkpoints.seed_spreads``, measured on this
    set): only for two of the suite's own trained weights, each one training run. The spread is the
    larger sd of the two designs where measured, else the largest measured of any design."""
    if not spreads or models.empty:
        return NOT_MEASURED
    by_name = {r["name"]: r for _, r in models.iterrows()}
    ra, rb = by_name.get(a), by_name.get(b)
    if ra is None or rb is None or str(ra.get("weights")) != "trained" or str(rb.get("weights")) != "trained":
        return NOT_MEASURED
    own = [spreads[x].sd for x in (str(ra["arch"]), str(rb["arch"])) if x in spreads]
    sd = max(own) if own else max(s.sd for s in spreads.values())
    how = "" if own else ", another design's"
    return "yes" if abs(diff) > sd else f"no (sd {sd:.3f}{how})"


def paired_section(doc: Doc, models: pd.DataFrame, paired: pd.DataFrame, set_name: str,
                   ci_pairs: Sequence[tuple[str, str]] = (), spreads: Optional[Mapping[str, Any]] = None) -> None:
    """Which models differ significantly (paired bootstrap); without per-image data, the pairs whose
    separate CIs overlap (``ci_pairs``). ``spreads``: training-seed spreads measured on this set
    (``bench.train.checkpoints.seed_spreads``), to say which differences of the suite's own trained
    weights exceed them."""
    doc.h(3, f"Paired comparisons on {set_name}")
    if paired.empty:
        doc.p("No paired comparison: the accuracy rows of this run carry no per-image IoUs "
              "(`per_image_iou_u16`, recorded since this report layer; re-run the accuracy jobs). "
              "Models are compared by their separate CIs only, which cannot resolve small differences.")
        by: dict[str, list[str]] = {}
        for a, b in ci_pairs:
            by.setdefault(a, []).append(b)
        if by:
            doc.table(["model", "95% CIs overlap with"], [[f"`{a}`", ", ".join(f"`{b}`" for b in bs)]
                                                          for a, bs in by.items()])
        return
    order = list(models.sort_values(C.MIOU, ascending=False)["name"])
    rows = []
    for a in order:
        mine = paired[(paired["a"] == a) | (paired["b"] == a)]
        if mine.empty:
            continue
        better = [p["b"] for _, p in mine.iterrows() if p["a"] == a and p["significant"]]
        worse = [p["a"] for _, p in mine.iterrows() if p["b"] == a and p["significant"]]
        tied = [p["b"] if p["a"] == a else p["a"] for _, p in mine.iterrows() if not p["significant"]]
        rows.append([f"`{a}`", ", ".join(f"`{x}`" for x in better) or NOT_MEASURED,
                     ", ".join(f"`{x}`" for x in tied) or NOT_MEASURED,
                     ", ".join(f"`{x}`" for x in worse) or NOT_MEASURED])
    doc.table(["model", "significantly more accurate than", "cannot be told apart from",
               "significantly less accurate than"], rows)
    best = order[0]
    near = [p for _, p in paired.iterrows() if p["a"] == best or (p["b"] in order and p["a"] in order
                                                                     and order.index(p["b"]) == order.index(p["a"]) + 1)]
    header = ["pair (more accurate first)", "images", "mIoU difference [95% CI]", "resolved"]
    table = [[f"`{p['a']}` − `{p['b']}`", _fmt(p["n_images"]), _fmt_diff(p), "yes" if p["significant"] else "no"]
             for p in near]
    if spreads:
        header.append("beyond training-seed spread")
        for row, p in zip(table, near):
            row.append(seed_verdict(models, p["a"], p["b"], float(p["diff_miou"]), spreads))
    doc.table(header, table)
    doc.p(f"Paired bootstrap over the same images ({PAIRED_BOOT} resamples of the images, the same draw for both "
          "models): the CI is of the difference itself, much narrower than the two separate CIs when the models "
          "err on the same images. \"Resolved\": the 95% CI excludes 0. Listed: each model against the most "
          f"accurate, and each against the next in accuracy order; {len(paired)} pairs in all.")
    if spreads:
        measured = ", ".join(f"`{s.arch}` {s.sd:.3f} ({s.n_seeds} seeds)" for s in spreads.values())
        doc.p("The bootstrap covers the choice of test images, not the training run: each of the suite's "
              "own checkpoints is one training run. \"Beyond training-seed spread\": for two of them, whether "
              "the difference exceeds the standard deviation of one design's mIoU over training seeds at the "
              f"same budget (measured: {measured}; `checkpoints/seed_spread.json`, docs/training.md); "
              "\"no\" means not separable by training seed.")


# ----------------------------------------------------------------------------- tables

def _sets_present(df: pd.DataFrame) -> list[tuple[str, str]]:
    acc = _candidates(df)
    present = list(dict.fromkeys(zip(_text(acc, "dataset"), _text(acc, "split"))))
    return [s for s in ACCURACY_SETS if s in present] + [s for s in present if s not in ACCURACY_SETS]


def per_set_table(doc: Doc, df: pd.DataFrame, size: int, names: Sequence[str] = ()) -> None:
    """Models x data sets: mIoU [95% CI] (images), each set on its own."""
    sets = _sets_present(df)
    if not sets:
        return
    by_set = {s: accuracy_by_model(df, size, *s) for s in sets}
    order = list(dict.fromkeys([*names, *(n for t in by_set.values() if not t.empty for n in t["name"])]))
    rows = []
    for n in order:
        cells, inp, weights = [], "", ""
        for s in sets:
            t = by_set[s]
            hit = t[t["name"] == n] if not t.empty else t
            if hit.empty:
                cells.append(NOT_MEASURED)
                continue
            r = hit.iloc[0]
            inp, weights = inp or str(r.get("input") or ""), weights or str(r.get("weights") or "")
            cells.append(_fmt_miou(r))
        if any(c != NOT_MEASURED for c in cells):
            rows.append([f"`{n}`", weights or NOT_MEASURED, inp or NOT_MEASURED, *cells])
    n_img = {s: _first_n(by_set[s]) for s in sets}
    doc.table(["model", "weights", "input", *[f"{set_label(*s)} ({n_img[s]} img.)" for s in sets]], rows)
    doc.p(f"mIoU = {CONVENTION}. Each set on its own: never pooled. {set_label(*ACCURACY_SETS[0])} is the "
          "authors' EG1800 test list (the papers' benchmark); the others are the validation sides of the suite's "
          "splits (`splits/`), never trained on.")


def _first_n(t: pd.DataFrame) -> str:
    n = _col(t, C.N_IMAGES).dropna() if not t.empty else pd.Series(dtype=float)
    return str(int(n.max())) if not n.empty else "?"


def literature_table(doc: Doc, df: pd.DataFrame, size: int) -> None:
    """Our SINet / ExtremeC3Net on eg1800 test beside the figures their papers' authors give."""
    doc.h(3, "Literature check (eg1800 test)")
    t = accuracy_by_model(df, size, *ACCURACY_SETS[0])
    rows = []
    for arch, (paper, source) in PAPER_MIOU.items():
        hit = t[(t["arch"] == arch) & (t["rank"] == 0)] if not t.empty else t
        if hit.empty:
            rows.append([f"`{arch}`", NOT_MEASURED, "not measured in this run", f"{100 * paper:.2f}", NOT_MEASURED,
                         source])
            continue
        r = hit.iloc[0]
        d = 100 * (float(r[C.MIOU]) - paper)
        rows.append([f"`{arch}`", str(r.get("input") or NOT_MEASURED), _fmt_miou(r), f"{100 * paper:.2f}",
                     f"{d:+.2f} ({'within' if abs(d) <= 1 else 'beyond'} 1 point)", source])
    doc.table(["model (official weights)", "input", "ours: mIoU [95% CI]", "paper (%)", "ours − paper (points)",
               "paper's figure"], rows)
    doc.p("Ours: " + CONVENTION + ". docs/training.md (\"IoU conventions\") scores the same predictions under "
          "per-image vs pooled and at-image vs at-input IoU: the person-class figures agree within 0.0035, the "
          "two-class mean is about 1.5 points lower; the papers' figures match the person-class IoU.")


# ----------------------------------------------------------------------------- learning curves

def learning_curves(archs: Sequence[str], checkpoints_dir: Optional[Path] = None) -> tuple[dict[str, pd.DataFrame], str]:
    """Per design with a committed checkpoint, its validation mIoU during training against images
    seen (from the provenance JSON's ``curve``; columns ``x``, ``y``, ``lo``, ``hi``, ``recipe``), and
    a note on what the curve was measured on."""
    if checkpoints_dir is None:
        from bench.paths import CHECKPOINTS_DIR as checkpoints_dir
    out, notes, missing = {}, set(), []
    for a in archs:
        path = Path(checkpoints_dir) / f"{a}.json"
        try:
            prov = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        curve = prov.get("curve") or []
        steps, seen = prov.get("steps"), prov.get("images_seen")
        per_step = (float(seen) / float(steps)) if _finite(steps) and _finite(seen) and float(steps) > 0 else None
        pts = [(c.get("images_seen") if _finite(c.get("images_seen")) else
                (c["step"] * per_step if per_step and _finite(c.get("step")) else None),
                c.get(C.VAL_MIOU), c.get(C.VAL_MIOU_CI_LOW), c.get(C.VAL_MIOU_CI_HIGH)) for c in curve]
        pts = [p for p in pts if _finite(p[0]) and _finite(p[1])]
        if len(pts) < 2:
            missing.append(a)
            continue
        recipe = (prov.get("recipe") or {}).get("name", "?")
        out[a] = pd.DataFrame(pts, columns=["x", "y", "lo", "hi"]).astype(float).assign(recipe=recipe)
        val = prov.get("validation") or {}
        n = (val.get("all") or {}).get(C.N_IMAGES)
        sets = "+".join((prov.get("recipe") or {}).get("train_sets") or [])
        notes.add(f"recipe {recipe}: validation side of {sets or '?'} ({n or '?'} images, pooled as the recipe "
                  f"validates), at {val.get('input_size', '?')} px")
    note = "; ".join(sorted(notes))
    if missing:
        note += ("; " if note else "") + "no curve in the provenance of " + ", ".join(missing)
    return out, note


def label_notes(df: pd.DataFrame) -> list[str]:
    """One warning per data set whose labels look wrong (every label empty, or a person share that
    photos of people do not have: ``label_warning`` of its accuracy rows; the labels are the same for
    every model, so the set is named once)."""
    acc = _rows(df, "accuracy")
    if acc.empty or "label_warning" not in acc.columns:
        return []
    out = []
    warned = acc[_text(acc, "label_warning") != ""]
    for (dataset, split), rows in warned.groupby([_text(warned, "dataset"), _text(warned, "split")], sort=True):
        out.append(f"**Labels of {set_label(dataset, split)} look wrong**: {rows['label_warning'].iloc[0]} "
                   f"({len(rows)} accuracy row(s) measured on them; their mIoU says nothing until the labels are read right).")
    return out
