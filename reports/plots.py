"""Plots of the comparison report (matplotlib, Agg, no pyplot state).

Every function takes data already prepared by :mod:`reports.report`, writes one PNG and returns its
path, or returns None when there is nothing to draw (the report then says what is missing).
matplotlib is imported inside the functions so the command line stays fast.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np
import pandas as pd

DPI = 110


def arch_colors(archs: Sequence[str]) -> dict[str, Any]:
    """A fixed colour per design (same in every plot of a report)."""
    from matplotlib import colormaps

    names = sorted(set(archs))
    cmap = colormaps["tab10" if len(names) <= 10 else "tab20"]
    return {a: cmap(i % cmap.N) for i, a in enumerate(names)}


def _figure(n_panels: int, width: float = 6.4, height: float = 4.6, ncols: int = 2):
    from matplotlib.figure import Figure

    ncols = max(1, min(ncols, n_panels))
    nrows = math.ceil(n_panels / ncols)
    fig = Figure(figsize=(width * ncols, height * nrows), dpi=DPI, layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    return fig, axes[:n_panels]


def _save(fig, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, facecolor="white")
    return path


def _color(colors: Mapping[str, Any], arch: str) -> Any:
    return colors.get(arch, "0.3")


BACKEND_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def plot_accuracy_vs_cost(panels: Sequence[Mapping], path: Path, colors: Mapping[str, Any],
                          ncols: int = 2) -> Optional[Path]:
    """One panel per cost (e.g. latency per backend): mIoU against cost, CIs as error bars, the
    Pareto front as a staircase. A panel is ``{"title", "xlabel", "points"}`` with points columns
    arch (the label), kind, x, x_lo, x_hi, y, y_lo, y_hi, on_front, and optionally color_key (the
    key of ``colors``, default arch), marker (a matplotlib marker, e.g. one per backend; default
    diamond for a peer, circle for a design), legend (the legend text) and disturbed (drawn hollow,
    label marked with a dagger: a timing with no quiet measurement of the same thing)."""
    panels = [p for p in panels if len(p["points"])]
    if not panels:
        return None
    fig, axes = _figure(len(panels), width=9.5 if any(p.get("legend_outside") for p in panels) else 6.4, ncols=ncols)
    placements = []  # (axes, labels, x, y) of each panel, placed once the figure's layout is known
    for ax, panel in zip(axes, panels):
        pts = panel["points"]
        labels = []
        for _, r in pts.iterrows():
            yerr = ([[max(r.y - r.y_lo, 0)], [max(r.y_hi - r.y, 0)]]
                    if np.isfinite(r.y_lo) and np.isfinite(r.y_hi) else None)
            xerr = ([[max(r.x - r.x_lo, 0)], [max(r.x_hi - r.x, 0)]]
                    if np.isfinite(r.x_lo) and np.isfinite(r.x_hi) else None)
            c = _color(colors, _text_or(r.get("color_key"), r.arch))
            disturbed = r.get("disturbed") is True or r.get("disturbed") == 1
            marker = _text_or(r.get("marker"), "D" if r.kind == "peer" else "o")
            label = _text_or(r.get("legend"), r.arch + (" (peer)" if r.kind == "peer" else ""))
            ax.errorbar([r.x], [r.y], yerr=yerr, xerr=xerr, fmt=marker, color=c, ms=8, capsize=4, elinewidth=1.3,
                        label=label + (" †" if disturbed else ""), markerfacecolor="none" if disturbed else c,
                        markeredgecolor="black" if r.on_front else c, zorder=3)
            labels.append(ax.text(r.x, r.y, r.arch + ("†" if disturbed else ""), fontsize=8))
        x = pts[["x", "x_lo", "x_hi"]].to_numpy(float)
        xlim = (np.nanmin(x) / 1.3, np.nanmax(x) * 1.6)
        front = pts[pts["on_front"]].sort_values("x")
        if len(front):
            # staircase: the best accuracy reachable at each cost, continued to the right edge
            fx = [*front["x"], xlim[1]]
            fy = [*front["y"], front["y"].iloc[-1]]
            ax.plot(fx, fy, "--", color="0.35", lw=1.2, drawstyle="steps-post",
                    label="Pareto front (black edge)", zorder=2)
        _log_axis(ax.xaxis)
        ax.set_xlim(*xlim)
        ax.set_xlabel(panel["xlabel"])
        ax.set_ylabel(panel.get("ylabel", "mIoU (mean per-image IoU, 95% CI)"))
        ax.set_title(panel["title"])
        ax.grid(True, which="both", alpha=0.3)
        if panel.get("legend_outside"):
            ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
        else:
            ax.legend(fontsize=8, loc="best")  # where it hides the fewest points
        placements.append((ax, labels, pts["x"].to_numpy(float), pts["y"].to_numpy(float)))
    fig.draw_without_rendering()  # one layout for all panels, then their labels are placed in it
    for placement in placements:
        _place_labels(*placement)
    return _save(fig, path)


def _place_labels(ax, labels: list, x: np.ndarray, y: np.ndarray) -> None:
    """Move the point labels apart and off the markers at ``x``, ``y`` (adjustText), with a thin line
    back to its point when one had to move far: models close in accuracy and speed are the
    interesting ones, and their labels would otherwise print over each other."""
    from adjustText import adjust_text

    if labels:
        legend = [ax.get_legend()] if ax.get_legend() is not None else None  # adjustText fails on []
        adjust_text(labels, x=x, y=y, objects=legend, ax=ax, expand=(1.3, 1.6), min_arrow_len=8,
                    arrowprops=dict(arrowstyle="-", color="0.5", lw=0.6))


def _log_axis(axis) -> None:
    """Log scale with plain numbers (2, 5, 10, 20 ...) instead of powers of ten."""
    from matplotlib.ticker import FuncFormatter, LogLocator

    axis.axes.set_xscale("log") if axis is axis.axes.xaxis else axis.axes.set_yscale("log")
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 3.0, 5.0)))
    axis.set_minor_locator(LogLocator(base=10, subs=tuple(range(1, 10))))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(FuncFormatter(lambda v, _: ""))


def plot_latency_bars(summary: pd.DataFrame, path: Path, colors: Mapping[str, Any],
                      labels: Mapping[str, str]) -> Optional[Path]:
    """Median latency per model (row ``name``, else ``arch``), one group per backend, p10-p90 as error
    bars; a figure flagged ``disturbed_<backend>`` is labelled with a dagger. ``labels`` maps the
    backend part of a ``latency_ms_<backend>`` column to the name shown."""
    cols = [c for c in summary.columns if c.startswith("latency_ms_") and not c.endswith(("_p10", "_p90"))
            and not c.startswith("latency_ms_best")
            and pd.to_numeric(summary[c], errors="coerce").notna().any()]
    if not cols or summary.empty:
        return None
    archs = list(summary["name"] if "name" in summary.columns else summary["arch"])
    fig, (ax,) = _figure(1, width=max(7.0, 1.6 * len(cols) * max(1, len(archs)) / 2.5), height=4.8)
    width = 0.8 / len(archs)
    for i, (_, r) in enumerate(summary.iterrows()):
        xs = np.arange(len(cols)) + (i - (len(archs) - 1) / 2) * width
        y = np.array([pd.to_numeric(r.get(c), errors="coerce") for c in cols], float)
        lo = np.array([pd.to_numeric(r.get(c + "_p10"), errors="coerce") for c in cols], float)
        hi = np.array([pd.to_numeric(r.get(c + "_p90"), errors="coerce") for c in cols], float)
        err = np.vstack([np.where(np.isfinite(lo), y - lo, 0), np.where(np.isfinite(hi), hi - y, 0)]).clip(min=0)
        bad = [r.get("disturbed_" + c[len("latency_ms_"):]) in (True, 1) for c in cols]
        ax.bar(xs, np.nan_to_num(y), width, yerr=err, capsize=3, color=_color(colors, archs[i]), label=archs[i])
        for x_, y_, top, b in zip(xs, y, np.where(np.isfinite(hi), hi, y), bad):
            if np.isfinite(y_):
                ax.text(x_, max(top, y_), f"{y_:.1f}" + ("†" if b else ""), ha="center", va="bottom", fontsize=7)
    ax.set_xticks(np.arange(len(cols)),
                  [labels.get(c[len("latency_ms_"):], c[len("latency_ms_"):]) for c in cols])
    ax.set_ylabel("median latency per frame (ms)")
    ax.set_title("Latency per backend (lower is better)")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=8, ncols=2)
    return _save(fig, path)


def plot_curves(panels: Sequence[Mapping], path: Path, colors: Mapping[str, Any], xlabel: str, ylabel: str,
                log_y: bool = False, speedup: bool = False) -> Optional[Path]:
    """One panel per backend, one line per design. A panel is ``{"title", "series": {arch: frame
    with x, y, lo, hi and optionally disturbed}}``. ``speedup`` plots y(first x) / y with the ideal linear
    speed-up dotted. Disturbed points (no quiet measurement of the same thing) are drawn hollow and
    their series is marked with a dagger in the legend."""
    panels = [p for p in panels if p["series"]]
    if not panels:
        return None
    fig, axes = _figure(len(panels))
    for ax, panel in zip(axes, panels):
        xmax = 1
        for arch, d in panel["series"].items():
            x, y = d["x"].to_numpy(float), d["y"].to_numpy(float)
            c = _color(colors, arch)
            bad = d["disturbed"].to_numpy(bool) if "disturbed" in d.columns else np.zeros(len(d), bool)
            yy = y[0] / y if speedup else y
            ax.plot(x, yy, "-", color=c, label=arch + (" (hollow: disturbed †)" if bad.any() else ""))
            ax.plot(x[~bad], yy[~bad], "o", color=c)
            ax.plot(x[bad], yy[bad], "o", color=c, markerfacecolor="none")
            if not speedup:
                lo, hi = d["lo"].to_numpy(float), d["hi"].to_numpy(float)
                ok = np.isfinite(lo) & np.isfinite(hi)
                if ok.any():
                    ax.fill_between(x[ok], lo[ok], hi[ok], color=c, alpha=0.15, lw=0)
            xmax = max(xmax, x.max())
            x0 = x.min()
        if speedup:
            xs = np.linspace(x0, xmax, 20)
            ax.plot(xs, xs / x0, ":", color="0.4", label="ideal (linear)")
            ax.set_xticks(sorted({int(v) for d in panel["series"].values() for v in d["x"]}))
        if log_y:
            _log_axis(ax.yaxis)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel.replace("{x0}", f"{x0:g}"))
        ax.set_title(panel["title"])
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    return _save(fig, path)


def plot_layer_shares(shares: Mapping[str, pd.DataFrame], path: Path, colors: Mapping[str, Any],
                      top: int = 8) -> Optional[Path]:
    """Per design, the ``top`` layers by share of MACs (the rest summed as "other")."""
    shares = {a: t for a, t in shares.items() if len(t) and t["macs"].sum() > 0}
    if not shares:
        return None
    fig, axes = _figure(len(shares), width=6.4, height=3.6)
    for ax, (arch, t) in zip(axes, shares.items()):
        t = t.sort_values("macs", ascending=False)
        head, rest = t.head(top), t.iloc[top:]
        names = [_short(f"{r.layer}" + (f" ({r.type})" if r.type else ""), 42) for r in head.itertuples()]
        vals = list(100 * head["share"])
        if len(rest):
            names.append(f"other ({len(rest)} layers)")
            vals.append(100 * rest["share"].sum())
        y = np.arange(len(names))[::-1]
        ax.barh(y, vals, color=_color(colors, arch))
        for yy, v in zip(y, vals):
            ax.text(v, yy, f" {v:.1f}%", va="center", fontsize=7)
        ax.set_yticks(y, names, fontsize=7)
        ax.set_xlabel("share of the design's MACs (%)")
        ax.set_xlim(0, max(vals) * 1.25)
        ax.set_title(f"{arch}: {t['macs'].sum() / 1e9:.3f} GMACs in {len(t)} layers", fontsize=10)
        ax.grid(True, axis="x", alpha=0.3)
    return _save(fig, path)


def _short(text: str, n: int) -> str:
    return text if len(text) <= n else "…" + text[-(n - 1):]


def plot_examples(grid: Sequence[Mapping], archs: Sequence[str], weights: Mapping[str, str], path: Path,
                  input_size: int) -> Optional[Path]:
    """Rows = images; columns = photo, label, each design's mask (foreground probability > 0.5) with
    its IoU against the label. A design without weights gets an "untrained" cell."""
    if not grid:
        return None
    from matplotlib.figure import Figure

    ncols = 2 + len(archs)
    fig = Figure(figsize=(1.9 * ncols, 2.4 * len(grid) + 0.4), dpi=DPI, layout="constrained")
    axes = fig.subplots(len(grid), ncols, squeeze=False)
    for i, item in enumerate(grid):
        gt = item["label"] > 0.5
        axes[i, 0].imshow(item["image"])
        axes[i, 0].set_ylabel(str(item["stem"]), fontsize=8)
        axes[i, 1].imshow(gt, cmap="gray", vmin=0, vmax=1)
        for j, a in enumerate(archs):
            ax = axes[i, 2 + j]
            prob = item["preds"].get(a)
            if prob is None:
                ax.imshow(np.full(gt.shape, 0.93), cmap="gray", vmin=0, vmax=1)
                ax.text(0.5, 0.5, f"{weights.get(a, 'untrained')}\n(no prediction)", ha="center", va="center",
                        fontsize=8, color="0.35", transform=ax.transAxes)
                continue
            pred = prob > 0.5
            union = np.logical_or(pred, gt).sum()
            iou = np.logical_and(pred, gt).sum() / union if union else 1.0
            ax.imshow(pred, cmap="gray", vmin=0, vmax=1)
            ax.set_xlabel(f"IoU {iou:.3f}", fontsize=8)
        if i == 0:
            axes[0, 0].set_title("image", fontsize=9)
            axes[0, 1].set_title("label", fontsize=9)
            for j, a in enumerate(archs):
                axes[0, 2 + j].set_title(f"{a}\n({weights.get(a, '?')})", fontsize=8)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"Example predictions at {input_size}x{input_size} input (mask = probability > 0.5)", fontsize=10)
    return _save(fig, path)


def pareto_front(points: Sequence[Sequence[float]]) -> list[int]:
    """Indices of the points not dominated by another, sorted by cost.

    A point is ``(cost, value)``: lower cost and higher value are better. Point ``i`` is dominated
    when some point has cost <= and value >= with one of them strict. Points with a NaN are never on
    the front; identical points are all on it.
    """
    p = np.asarray(points, dtype=float).reshape(-1, 2) if len(points) else np.zeros((0, 2))
    front = []
    for i, (c, v) in enumerate(p):
        if not (math.isfinite(c) and math.isfinite(v)):
            continue
        others = np.delete(p, i, axis=0)
        others = others[np.isfinite(others).all(axis=1)]
        dominated = ((others[:, 0] <= c) & (others[:, 1] >= v) & ((others[:, 0] < c) | (others[:, 1] > v))).any()
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: (p[i, 0], -p[i, 1], i))


def _text_or(v: Any, default: str) -> str:
    """``v`` when it is a non-empty string (a frame's missing cell is NaN), else ``default``."""
    return v if isinstance(v, str) and v else default


def curve_labels(curves: Mapping[str, pd.DataFrame]) -> dict[str, str]:
    """Legend text per design: its name, plus its recipe (``recipe`` column) when the curves come
    from more than one (they then validate on different images)."""
    recipes = {str(d["recipe"].iat[0]) for d in curves.values() if "recipe" in d}
    return {a: f"{a} ({d['recipe'].iat[0]})" if len(recipes) > 1 and "recipe" in d else a
            for a, d in curves.items()}


def plot_learning_curves(curves: Mapping[str, pd.DataFrame], path: Path, colors: Mapping[str, Any],
                         title: str) -> Optional[Path]:
    """Validation mIoU against images seen, one line per design (``x``, ``y``, ``lo``, ``hi``; the CI shaded)."""
    curves = {a: d for a, d in curves.items() if len(d) >= 2}
    if not curves:
        return None
    fig, (ax,) = _figure(1, width=8.0, height=4.8)
    labels = curve_labels(curves)
    for arch, d in sorted(curves.items()):
        c = _color(colors, arch)
        ax.plot(d["x"], d["y"], "o-", color=c, ms=4, label=labels[arch])
        ok = np.isfinite(d["lo"]) & np.isfinite(d["hi"])
        if ok.any():
            ax.fill_between(d["x"][ok], d["lo"][ok], d["hi"][ok], color=c, alpha=0.12, lw=0)
    ax.set_xlabel("images seen in training")
    ax.set_ylabel("validation mIoU (95% CI shaded)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return _save(fig, path)
