"""Drawing only: each function takes tables computed by the metric modules and returns a
matplotlib `Figure` with labelled axes, units and a legend where several series share it.

Figures are built on `matplotlib.figure.Figure` directly (no pyplot state, Agg canvas),
so they are safe in servers, tests and worker processes. Colours are the Okabe-Ito
palette, which stays distinguishable with every common form of colour blindness; series
beyond eight also change line style (or hatch, in stacked areas). Functions that overlay several runs take a mapping
label -> table: one run gives one entry, an ablation gives several.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

#: Okabe & Ito (2008) colour-blind-safe palette
OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]
_STYLES = ["-", "--", ":", "-."]
_HATCHES = ["//", "..", "xx", "\\\\"]
#: sequential colour map readable in grey scale and by colour-blind readers
SEQUENTIAL = "cividis"


def colour(i: int) -> str:
    return OKABE_ITO[i % len(OKABE_ITO)]


def style(i: int) -> str:
    return _STYLES[(i // len(OKABE_ITO)) % len(_STYLES)]


def _figure(width: float = 6.4, height: float = 4.0) -> tuple[Figure, object]:
    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, fig.add_subplot()


def _legend(ax: object, n_series: int) -> None:
    if n_series > 1:
        ax.legend(frameon=False, fontsize="small")


# ----- curves with bands ----------------------------------------------------------------------
def plot_band_curves(
    curves: Mapping[str, pd.DataFrame], x: str, xlabel: str, ylabel: str, title: str, ylim: tuple[float, float] | None = None,
) -> Figure:
    """Lines of `mean` over `x` with a shaded `low`..`high` band, one per label."""
    fig, ax = _figure()
    for i, (label, frame) in enumerate(curves.items()):
        frame = frame.sort_values(x)
        ax.plot(frame[x], frame["mean"], color=colour(i), linestyle=style(i), label=label, linewidth=1.6)
        if {"low", "high"} <= set(frame.columns) and frame["low"].notna().any():
            ax.fill_between(frame[x], frame["low"], frame["high"], color=colour(i), alpha=0.2, linewidth=0)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.grid(alpha=0.3)
    if len(curves) > 1 or any(label for label in curves):
        ax.legend(frameon=False, fontsize="small")
    return fig


def plot_training_curves(curves: Mapping[str, pd.DataFrame], metric: str, title: str,
                         bounds: tuple[float, float] | None = None) -> Figure:
    """A training metric (e.g. episode return) over environment steps, with a 95% band
    across seeds; tables have columns step, mean, low, high, n (see training.band).
    `bounds`: the metric's range (a rate: (0, 1)); the band is cut to it (a Student-t band
    over few seeds can reach far past a rate's range) and so are the axes."""
    seeds = max((int(frame["n"].max()) for frame in curves.values() if len(frame)), default=0)
    band = f"{seeds} seeds, 95% band" if seeds > 1 else "1 seed, no band"
    ylim = None
    if bounds is not None:
        curves = {label: frame.assign(low=frame["low"].clip(*bounds), high=frame["high"].clip(*bounds)) if "low" in frame else frame
                  for label, frame in curves.items()}
        margin = (bounds[1] - bounds[0]) * 0.02
        ylim = (bounds[0] - margin, bounds[1] + margin)
    return plot_band_curves(curves, "step", "environment steps", metric, f"{title} ({band})", ylim)


def plot_cooperation_over_rounds(curves: Mapping[str, pd.DataFrame]) -> Figure:
    """Cooperation rate per game round with a 95% band over episodes; tables have columns
    round, rate, low, high (metrics.cooperation_by_round)."""
    renamed = {k: v.rename(columns={"rate": "mean"}).assign(round=v["round"] + 1) for k, v in curves.items()}
    return plot_band_curves(renamed, "round", "round", "cooperation rate (fraction)",
                            "Cooperation over rounds (95% band over episodes)", ylim=(-0.02, 1.02))


# ----- exact reference levels -------------------------------------------------------------------
#: line styles of reference levels (grey and dark, so they never read as another series)
_REFERENCE_STYLES = [("#444444", (0, (6, 3))), ("#999999", (0, (2, 2))), ("#444444", (0, (1, 3))), ("#999999", (0, (8, 2, 2, 2)))]


def draw_references(ax: object, references: Sequence[tuple[str, float]], vertical: bool = False) -> None:
    """Draw each (label, value) as a labelled reference line across `ax` (horizontal over a
    curve's y values, vertical over a bar chart's x values) and show the legend."""
    for i, (label, value) in enumerate(references):
        color, dashes = _REFERENCE_STYLES[i % len(_REFERENCE_STYLES)]
        line = ax.axvline if vertical else ax.axhline
        line(value, color=color, linestyle=dashes, linewidth=1.3, label=f"{label}: {value:.4g}")
    if references:
        ax.legend(frameon=False, fontsize="small")


# ----- commons --------------------------------------------------------------------------------
def plot_stock(
    trajectories: Mapping[str, pd.DataFrame], capacity: float, collapse_threshold: float,
) -> Figure:
    """Resource stock after each round: one thin line per episode and a bold mean per
    label, with the maximum-sustainable-yield level (K/2) and the collapse threshold."""
    fig, ax = _figure()
    for i, (label, frame) in enumerate(trajectories.items()):
        for _, episode in frame.groupby("episode"):
            ax.plot(episode["rounds_played"], episode["stock"], color=colour(i), alpha=0.25, linewidth=0.8)
        # the mean over the episodes still running, so collapsed episodes do not drag it to zero
        mean = frame.groupby("rounds_played")["stock"].mean()
        ax.plot(mean.index, mean.to_numpy(), color=colour(i), linestyle=style(i), linewidth=2.2, label=f"{label} (mean)")
    ax.axhline(capacity / 2, color="#555555", linestyle="--", linewidth=1, label="max. sustainable yield level (K/2)")
    ax.axhline(collapse_threshold, color="#D55E00", linestyle=":", linewidth=1.2, label="collapse threshold")
    ax.set_xlabel("rounds played")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("resource stock (units)")
    ax.set_ylim(0, capacity * 1.05)
    ax.set_title("Resource stock over time (thin: single episodes)")
    ax.grid(alpha=0.3)
    ax.legend(frameon=False, fontsize="small")
    return fig


# ----- per-agent results -----------------------------------------------------------------------
def plot_agent_returns(returns: Mapping[str, pd.DataFrame]) -> Figure:
    """Mean return per agent with 95% intervals over episodes; tables have columns agent,
    mean, low, high. Several labels are drawn side by side."""
    agents: list[str] = []
    for frame in returns.values():
        agents += [a for a in frame["agent"] if a not in agents]
    fig, ax = _figure(6.4, min(1.6 + 0.3 * len(agents) * max(1.0, 0.7 * len(returns)), 14.0))
    y = np.arange(len(agents))
    height = 0.8 / max(len(returns), 1)
    for i, (label, frame) in enumerate(returns.items()):
        frame = frame.set_index("agent").reindex(agents)
        err = np.vstack([frame["mean"] - frame["low"], frame["high"] - frame["mean"]])
        ax.barh(y + i * height, frame["mean"], height=height, color=colour(i), label=label,
                xerr=np.nan_to_num(err), capsize=2, error_kw={"linewidth": 0.8})
    ax.set_yticks(y + height * (len(returns) - 1) / 2, agents)
    ax.invert_yaxis()
    ax.set_xlabel("return per episode (payoff units, mean ± 95% CI)")
    ax.set_ylabel("agent")
    ax.set_title("Returns by agent")
    ax.grid(alpha=0.3, axis="x")
    if len(returns) > 1:
        ax.legend(frameon=False, fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.25 if len(agents) < 4 else -0.12), ncols=2)
    return fig


def plot_ranking(ranking: pd.DataFrame, score_label: str = "score per match", interval: str = "95% bootstrap CI") -> Figure:
    """Tournament ranking: players sorted by mean score with their intervals; columns
    player, mean, low, high (best first)."""
    frame = ranking.sort_values("mean", ascending=True)
    fig, ax = _figure(6.4, 0.8 + 0.3 * len(frame))
    y = np.arange(len(frame))
    err = np.vstack([frame["mean"] - frame["low"], frame["high"] - frame["mean"]])
    ax.errorbar(frame["mean"], y, xerr=np.nan_to_num(err), fmt="o", color=colour(0), ecolor=colour(0), capsize=3)
    ax.set_yticks(y, frame["player"])
    ax.set_xlabel(f"{score_label} (mean, {interval})")
    ax.set_ylabel("player (rank 1 at top)")
    ax.set_title("Tournament ranking")
    ax.grid(alpha=0.3, axis="x")
    return fig


def cell_label(value: float) -> str:
    """A heatmap cell's number: plain notation with two significant decimals at most
    ("297", "29.7", "2.97", "0.30"), so payoffs never print as "3e+02"."""
    size = abs(value)
    if size >= 100:
        return f"{value:.0f}"
    return f"{value:.1f}" if size >= 10 else f"{value:.2f}"


def plot_heatmap(
    matrix: pd.DataFrame, value_label: str, title: str, xlabel: str, ylabel: str, limits: tuple[float, float] | None = None,
) -> Figure:
    """A matrix as a heatmap with its values written in the cells (payoff matrix, mutual
    cooperation by pair); `limits` fixes the colour scale (e.g. 0..1 for rates). At least
    6 inches square, so labels and cell numbers stay readable when it is shown full width."""
    size = min(14.0, max(6.0, 0.7 * len(matrix.columns) + 3.0))
    fig, ax = _figure(size + 1.5, size)
    values = matrix.to_numpy(dtype=float)
    vmin, vmax = limits if limits is not None else (None, None)
    image = ax.imshow(values, cmap=SEQUENTIAL, aspect="auto", vmin=vmin, vmax=vmax)
    ax.set_xticks(np.arange(len(matrix.columns)), [str(c) for c in matrix.columns], rotation=45, ha="right")
    ax.set_yticks(np.arange(len(matrix.index)), [str(i) for i in matrix.index])
    if values.size and values.size <= 400:
        finite = values[np.isfinite(values)]
        middle = (vmin + vmax) / 2 if limits is not None else (finite.min() + finite.max()) / 2 if finite.size else 0
        fontsize = "medium" if values.shape[1] <= 6 else "small" if values.shape[1] <= 12 else "x-small"
        for (r, c), v in np.ndenumerate(values):
            if np.isfinite(v):
                ax.text(c, r, cell_label(v), ha="center", va="center", fontsize=fontsize, color="black" if v > middle else "white")
    fig.colorbar(image, ax=ax, label=value_label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    return fig


def plot_population_shares(shares: pd.DataFrame, model: str = "replicator dynamics", xlabel: str = "generation") -> Figure:
    """Ecological tournament: population share of each strategy over generations (a
    stacked area; columns are players, the index is the generation); `model` names the
    dynamics in the title (replicator dynamics, Moran process)."""
    fig, ax = _figure()
    colours = [colour(i) for i in range(len(shares.columns))]
    areas = ax.stackplot(shares.index.to_numpy(), shares.to_numpy().T, labels=[str(c) for c in shares.columns],
                         colors=colours, alpha=0.9)
    for i, area in enumerate(areas):  # beyond eight strategies colours repeat: add a hatch
        if i >= len(OKABE_ITO):
            area.set_hatch(_HATCHES[(i // len(OKABE_ITO) - 1) % len(_HATCHES)])
            area.set_edgecolor("white")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("population share (fraction)")
    ax.set_ylim(0, 1)
    ax.set_xlim(shares.index.min(), shares.index.max())
    ax.set_title(f"Population shares ({model})")
    handles, labels = ax.get_legend_handles_labels()  # listed top to bottom, as stacked
    ax.legend(handles[::-1], labels[::-1], frameon=False, fontsize="x-small", loc="center left", bbox_to_anchor=(1.0, 0.5))
    return fig


# ----- communication ----------------------------------------------------------------------------
def plot_talk_graph(talk: pd.DataFrame, seed: int = 0) -> Figure:
    """Who talks to whom: agents as nodes, an arrow per sender -> recipient pair with
    width proportional to the number of delivered messages (talk matrix from
    communication.talk_matrix); the layout is fixed by `seed`."""
    import networkx as nx

    graph = nx.DiGraph()
    graph.add_nodes_from(talk.index)
    for sender in talk.index:
        for recipient in talk.columns:
            if talk.loc[sender, recipient] > 0:
                graph.add_edge(sender, recipient, count=int(talk.loc[sender, recipient]))
    fig, ax = _figure(6.0, 5.0)
    positions = nx.circular_layout(graph) if len(graph) <= 12 else nx.spring_layout(graph, seed=seed)
    counts = [d["count"] for _, _, d in graph.edges(data=True)]
    most = max(counts, default=1)
    widths = [0.5 + 5.0 * c / most for c in counts]
    nx.draw_networkx_nodes(graph, positions, ax=ax, node_color=colour(4), node_size=900, edgecolors="black", linewidths=0.8)
    nx.draw_networkx_labels(graph, positions, ax=ax, font_size=8)
    nx.draw_networkx_edges(graph, positions, ax=ax, width=widths, edge_color=colour(0), alpha=0.7, arrows=True,
                           arrowsize=12, connectionstyle="arc3,rad=0.12", node_size=900)
    ax.set_title(f"Communication graph (edge width: messages delivered, max {most})")
    ax.set_xlabel("edge width ∝ delivered messages")
    ax.set_ylabel("")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    return fig


def plot_messages_over_time(vocabulary: Mapping[str, pd.DataFrame]) -> Figure:
    """Message length (words) and vocabulary (distinct and cumulative words) per round;
    tables from communication.vocabulary_over_time."""
    fig = Figure(figsize=(6.4, 5.6), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True)
    for i, (label, frame) in enumerate(vocabulary.items()):
        x = frame["round"] + 1
        top.plot(x, frame["mean_words"], color=colour(i), linestyle=style(i), label=label)
        bottom.plot(x, frame["distinct_words"], color=colour(i), linestyle="-", label=f"{label}: used this round")
        bottom.plot(x, frame["cumulative_vocabulary"], color=colour(i), linestyle="--", label=f"{label}: cumulative")
    top.set_ylabel("message length (words)")
    top.set_title("Messages over time")
    bottom.set_ylabel("vocabulary (distinct words)")
    bottom.set_xlabel("round")
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    _legend(top, len(vocabulary))
    bottom.legend(frameon=False, fontsize="small")
    return fig


def save_figure(fig: Figure, out_dir: Path, name: str, formats: tuple[str, ...] = ("png", "svg"), dpi: int = 150) -> list[Path]:
    """Write `fig` as `out_dir/name.<format>` for each format; returns the paths. StoreError
    (one line) if the directory cannot be written."""
    import matplotlib

    from mas.errors import StoreError

    paths = []
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        # a fixed salt and no date: the same run gives byte-identical SVG files
        with matplotlib.rc_context({"svg.hashsalt": "mas"}):
            for fmt in formats:
                path = out_dir / f"{name}.{fmt}"
                fig.savefig(path, format=fmt, dpi=dpi, metadata={"Date": None} if fmt == "svg" else None)
                paths.append(path)
    except OSError as exc:
        raise StoreError(f"{out_dir}: cannot write figures ({exc.strerror or exc})") from None
    return paths
