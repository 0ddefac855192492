"""Pictures of layer-by-layer feature propagation (Zhang & Wynter 2018, Figures 2-7).

Every drawing function takes arrays (the fields of
``stableresnet.experiments.propagation.Propagation``) and an optional Axes, and returns
a `matplotlib.figure.Figure`; nothing is shown. matplotlib is imported inside the
functions (Figure objects with the Agg canvas, never pyplot), so importing this module
costs nothing and never opens a window.

Two axis modes, as in the paper's supplement:

- ``"scaled"``: each panel fits its own layer, so the shape stays visible while the scale
  explodes (plain, h = 1) or collapses (shrinkage, h = 1); read the tick labels.
- ``"fixed"``: one square window, equal aspect, shared by all panels and frames, so the
  scale itself is what you see.

Layers from ``first_nonfinite_layer`` on are drawn as an empty panel saying so: inf/NaN
never crash a picture, and the finite layers before it are drawn as usual.

Many seeds: grids and animations show one member, the median by final accuracy
(``PropagationSeeds.median_index``, named in the title); ``plot_seed_bands`` shows every
member's per-layer accuracy and max |y| as a median with its inter-quartile range.

Animations are written as GIF (Pillow) and MP4 (H.264, through the ffmpeg binary that the
``imageio-ffmpeg`` wheel ships, so no system ffmpeg is needed).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..files import write_atomically
from ..errors import ConfigError

AXES_MODES = ("scaled", "fixed")
POINT_SIZE = 9
# Matplotlib's C0, C1, ...: the colours of the Figure 1 plot (stableresnet.viz.data.plot_synthetic).
CLASS_COLORS = [f"C{k}" for k in range(10)]


def default_layers(depth: int) -> list[int]:
    """The layers shown in a grid: 0, 5, then every ``ceil(depth / 10)``-th layer up to ``depth``.

    This reproduces the paper's choice, 0, 5, 10, 20, ..., 100 for 100 layers and
    0, 5, 50, 100, ..., 500 for 500 layers, and gives at most 12 panels for any depth
    (layer 5 is left out where it is beyond ``depth``; ``depth`` itself is always shown).

    >>> default_layers(100)[:4], default_layers(500)[:4], default_layers(4)
    ([0, 5, 10, 20], [0, 5, 50, 100], [0, 1, 2, 3, 4])
    """
    stride = max(1, math.ceil(depth / 10))
    return sorted({0, depth, *(k for k in (5,) if k <= depth), *range(stride, depth + 1, stride)})


def check_layers(layers, depth: int) -> list[int]:
    """Sorted unique layer indices, each in [0, depth]; otherwise a `ConfigError` naming the bad one."""
    layers = list(layers)
    if not layers:
        raise ConfigError("at least one layer must be shown")
    for layer in layers:
        if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)):
            raise ConfigError(f"layers must be integers; got {layer!r}")
        if layer < 0:
            raise ConfigError(f"layer {layer} is negative; layers run from 0 (the input) to the depth")
        if layer > depth:
            raise ConfigError(f"layer {layer} is beyond the depth {depth}; layers run from 0 to {depth}")
    return sorted({int(layer) for layer in layers})


def _figure(**kwargs):
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend

    return Figure(**kwargs)


def _limits(points: np.ndarray) -> tuple[tuple[float, float], tuple[float, float]]:
    """Per-coordinate (low, high) of the finite points with a 6 % margin; never empty or infinite."""
    finite = points[np.isfinite(points).all(axis=-1)].reshape(-1, 2)
    if finite.size == 0:
        return (-1.0, 1.0), (-1.0, 1.0)
    limits = []
    for low, high in zip(finite.min(axis=0), finite.max(axis=0)):
        # A layer collapsed to a point still gets a visible window around it.
        span = max(high - low, 1e-9 * max(abs(low), abs(high)), 1e-12)
        margin = 0.06 * span
        limits.append((float(low - margin), float(high + margin)))
    return tuple(limits)


def _square_limits(points: np.ndarray):
    """One square window (equal spans) holding every finite point: the fixed-axes window."""
    (x0, x1), (y0, y1) = _limits(points)
    half = max(x1 - x0, y1 - y0) / 2
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    return (cx - half, cx + half), (cy - half, cy + half)


def _is_nonfinite(layer: int, first_nonfinite_layer: int) -> bool:
    return first_nonfinite_layer >= 0 and layer >= first_nonfinite_layer


def _layer_title(layer: int, accuracy) -> str:
    if accuracy is None or not np.isfinite(accuracy):
        return f"layer {layer}"
    return f"layer {layer} · accuracy {accuracy:.2f}"


def _draw_layer(ax, features, labels, layer, accuracy, limits, first_nonfinite_layer):
    """Scatter one layer onto ``ax`` (one collection per class), or mark it non-finite."""
    # Scaled panels may carry an axis offset label ("×10⁻⁴ + ...") above the plot: lift the title over it.
    ax.set_title(_layer_title(layer, accuracy), fontsize="medium", pad=16 if limits is None else 6)
    ax.tick_params(labelsize="x-small")
    if _is_nonfinite(layer, first_nonfinite_layer):
        ax.text(0.5, 0.5, f"non-finite\nfrom layer {first_nonfinite_layer}", transform=ax.transAxes,
                ha="center", va="center", color="0.35", fontsize="large")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_facecolor("0.95")
        return
    for k in np.unique(labels):
        members = labels == k
        ax.scatter(features[members, 0], features[members, 1], s=POINT_SIZE, color=CLASS_COLORS[k % 10],
                   label=f"class {k}", linewidths=0, alpha=0.85)
    if limits is not None:
        ax.set_xlim(limits[0])
        ax.set_ylim(limits[1])
        ax.set_aspect("equal", adjustable="box")
    else:
        # Scaled axes: each coordinate fitted on its own, as in the paper's pictures; equal
        # aspect would flatten the late, almost linear layers into an invisible line.
        x_limits, y_limits = _limits(features)
        ax.set_xlim(x_limits)
        ax.set_ylim(y_limits)
    ax.ticklabel_format(style="sci", scilimits=(-2, 3), useMathText=True)


def _check_axes_mode(axes_mode: str) -> None:
    if axes_mode not in AXES_MODES:
        raise ConfigError(f"unknown axes mode {axes_mode!r}; expected one of {list(AXES_MODES)} (or both)")


def _fixed_window(trajectory: np.ndarray, layers, first_nonfinite_layer: int):
    finite_layers = [layer for layer in layers if not _is_nonfinite(layer, first_nonfinite_layer)]
    return _square_limits(trajectory[finite_layers]) if finite_layers else None


def plot_layer(features, labels, layer=0, accuracy=None, ax=None, limits=None, first_nonfinite_layer=-1):
    """One layer's test features, coloured by class.

    Parameters
    ----------
    features : (n, 2) array
    labels : (n,) int array
    layer : int, used in the title
    accuracy : float, optional, shown in the title
    ax : matplotlib Axes, optional
    limits : ((x0, x1), (y0, y1)), optional; default fitted to the points
    first_nonfinite_layer : int; ``layer`` at or after it is drawn as a "non-finite" panel

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> figure = plot_layer(np.zeros((4, 2)), np.array([0, 1, 0, 1]), layer=3, accuracy=0.5)
    >>> figure.axes[0].get_title()
    'layer 3 · accuracy 0.50'
    """
    if ax is None:
        ax = _figure(figsize=(4, 4), layout="constrained").subplots()
    _draw_layer(ax, np.asarray(features, dtype=float), np.asarray(labels), layer, accuracy, limits,
                first_nonfinite_layer)
    return ax.figure


def plot_propagation_grid(trajectory, labels, layers=None, accuracy=None, axes_mode="scaled",
                          first_nonfinite_layer=-1, title=None, ncols=4):
    """The paper's grid: one panel per chosen layer, titled with the layer and its accuracy.

    Parameters
    ----------
    trajectory : (depth + 1, n, 2) array of test features
    labels : (n,) int array
    layers : list of int, default `default_layers(depth)`
    accuracy : (depth + 1,) array, optional (the head's accuracy per layer)
    axes_mode : "scaled" or "fixed"
    first_nonfinite_layer : int, -1 if every layer is finite
    title : str, optional figure title
    ncols : int, panels per row

    Returns
    -------
    matplotlib.figure.Figure, with ``figure.axes[i]`` the panel of ``layers[i]``.
    """
    _check_axes_mode(axes_mode)
    trajectory = np.asarray(trajectory, dtype=float)
    labels = np.asarray(labels)
    depth = trajectory.shape[0] - 1
    layers = default_layers(depth) if layers is None else check_layers(layers, depth)
    ncols = min(ncols, len(layers))
    nrows = math.ceil(len(layers) / ncols)
    figure = _figure(figsize=(3.2 * ncols, 3.2 * nrows + (0.5 if title else 0.2)), layout="constrained")
    panels = np.atleast_1d(figure.subplots(nrows, ncols, squeeze=False).ravel())
    limits = _fixed_window(trajectory, layers, first_nonfinite_layer) if axes_mode == "fixed" else None
    for ax, layer in zip(panels, layers):
        _draw_layer(ax, trajectory[layer], labels, layer, None if accuracy is None else accuracy[layer],
                    limits, first_nonfinite_layer)
    for ax in panels[len(layers):]:
        figure.delaxes(ax)
    handles, names = next(((h, n) for h, n in (ax.get_legend_handles_labels() for ax in figure.axes) if h),
                          ([], []))
    if handles:
        figure.legend(handles, names, loc="outside lower center", ncols=len(handles), markerscale=2,
                      frameon=False)
    if title:
        figure.suptitle(title)
    return figure


def plot_layer_accuracy(head_accuracy, probe_accuracy=None, ax=None, first_nonfinite_layer=-1, title=None):
    """Accuracy of the trained head and of a linear probe at every layer, against depth."""
    if ax is None:
        ax = _figure(figsize=(7, 3.8), layout="constrained").subplots()
    layers = np.arange(len(head_accuracy))
    ax.plot(layers, head_accuracy, color="C3", lw=1.8, label="trained head on layer i")
    if probe_accuracy is not None:
        ax.plot(layers, probe_accuracy, color="0.3", lw=1.4, ls="--", label="logistic-regression probe")
    _mark_nonfinite(ax, first_nonfinite_layer, len(layers) - 1)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlim(0, max(len(layers) - 1, 1))
    ax.set_xlabel("layer i")
    ax.set_ylabel("test accuracy")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    if title:
        ax.set_title(title, wrap=True)  # a run's title can be wider than one axes
    return ax.figure


def plot_feature_scale(max_abs_feature, mean_step_norm, ax=None, first_nonfinite_layer=-1, title=None):
    """max |y_i| and the mean step ||y_i - y_{i-1}|| per layer, on a log axis.

    Non-finite and zero values are left out of the lines (a log axis cannot show them);
    the first non-finite layer gets a vertical marker.
    """
    if ax is None:
        ax = _figure(figsize=(7, 3.8), layout="constrained").subplots()
    layers = np.arange(len(max_abs_feature))
    for values, style, label in ((max_abs_feature, dict(color="C0", lw=1.8), r"$\max\,|y_i|$"),
                                 (mean_step_norm, dict(color="C2", lw=1.4), r"mean $\|y_i - y_{i-1}\|$")):
        values = np.asarray(values, dtype=float)
        shown = np.where(np.isfinite(values) & (values > 0), values, np.nan)
        ax.plot(layers, shown, label=label, **style)
    ax.set_yscale("log")
    _mark_nonfinite(ax, first_nonfinite_layer, len(layers) - 1)
    ax.set_xlim(0, max(len(layers) - 1, 1))
    ax.set_xlabel("layer i")
    ax.set_ylabel("feature scale")
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="best", fontsize="small")
    if title:
        ax.set_title(title, wrap=True)
    return ax.figure


def seed_quartiles(values) -> np.ndarray:
    """(3, depth + 1): the 25th, 50th and 75th percentile over members (axis 0) of ``values`` (N, depth + 1).

    Non-finite values (overflowed features) count as +inf, and each quartile is the nearest
    member's value (no interpolation), so an overflowed quarter of the members shows as an
    infinite bound rather than as NaN.
    """
    values = np.asarray(values, dtype=float)
    values = np.where(np.isfinite(values), values, np.inf)
    return np.percentile(values, [25, 50, 75], axis=0, method="nearest")


def plot_seed_bands(head_accuracy, max_abs_feature, seeds=None, title=None):
    """Per-layer head accuracy and max |y| over seeds: the median line and the inter-quartile band.

    Parameters
    ----------
    head_accuracy, max_abs_feature : (n_members, depth + 1) arrays
    seeds : list of int, optional, said in the legend
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure with two panels (accuracy; max |y| on a log axis); each panel's
    first line is the median over members (`seed_quartiles`), infinite values left out.
    """
    figure = _figure(figsize=(11, 3.8), layout="constrained")
    accuracy_ax, scale_ax = figure.subplots(1, 2)
    count = len(head_accuracy) if seeds is None else f"{len(seeds)} seeds ({seeds[0]}-{seeds[-1]})"
    for ax, values, color, label in ((accuracy_ax, head_accuracy, "C3", "head accuracy on layer i"),
                                     (scale_ax, max_abs_feature, "C0", r"$\max\,|y_i|$")):
        low, median, high = (np.where(np.isfinite(q), q, np.nan) for q in seed_quartiles(values))
        layers = np.arange(len(median))
        ax.plot(layers, median, color=color, lw=1.8, label=f"median over {count}")
        ax.fill_between(layers, low, high, color=color, alpha=0.25, lw=0, label="inter-quartile range")
        ax.set_xlim(0, max(len(layers) - 1, 1))
        ax.set_xlabel("layer i")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3, which="both")
        ax.legend(loc="best", fontsize="small")
    accuracy_ax.set_ylim(-0.02, 1.02)
    scale_ax.set_yscale("log")
    if title:
        figure.suptitle(title)
    return figure


def _mark_nonfinite(ax, first_nonfinite_layer, last_layer):
    """Grey out the layers from the first non-finite one on, and say so."""
    if first_nonfinite_layer >= 0:
        ax.axvline(first_nonfinite_layer, color="0.4", ls=":", lw=1.2)
        ax.axvspan(first_nonfinite_layer, last_layer, color="0.92", zorder=0)
        ax.text(first_nonfinite_layer, 0.5, f" non-finite from layer {first_nonfinite_layer}",
                transform=ax.get_xaxis_transform(), fontsize="small", color="0.3", va="center")


def frame_layers(depth: int, max_frames: int | None = None) -> list[int]:
    """The layers an animation shows: all of 0 ... depth, or ``max_frames`` of them evenly spread (ends kept).

    >>> frame_layers(4), frame_layers(500, 6)
    ([0, 1, 2, 3, 4], [0, 100, 200, 300, 400, 500])
    """
    if max_frames is not None and (
            isinstance(max_frames, bool) or not isinstance(max_frames, (int, np.integer)) or max_frames < 2):
        raise ConfigError(f"an animation needs at least 2 frames (the input and the last layer); got {max_frames!r}")
    if max_frames is None or max_frames >= depth + 1:
        return list(range(depth + 1))
    return sorted({int(round(k)) for k in np.linspace(0, depth, max_frames)})


def propagation_animation(trajectory, labels, accuracy=None, axes_mode="scaled", first_nonfinite_layer=-1,
                          title=None, fps=20, dpi=60, max_frames=None):
    """An animation with one frame per layer, 0 ... depth (or ``max_frames`` evenly spread), labelled with layer and accuracy.

    The artists are made once and updated per frame (offsets, limits, title): redrawing
    panels from scratch costs ~0.2 s a frame, too much for 500 layers.

    Returns
    -------
    (Figure, matplotlib.animation.FuncAnimation); save with a Pillow (GIF) or FFmpeg writer.
    """
    from matplotlib.animation import FuncAnimation

    _check_axes_mode(axes_mode)
    trajectory = np.asarray(trajectory, dtype=float)
    labels = np.asarray(labels)
    depth = trajectory.shape[0] - 1
    figure = _figure(figsize=(4.6, 4.8), dpi=dpi)
    figure.subplots_adjust(left=0.17, right=0.95, bottom=0.12, top=0.84 if title else 0.9)
    ax = figure.add_subplot()
    limits = _fixed_window(trajectory, range(depth + 1), first_nonfinite_layer) if axes_mode == "fixed" else None
    if title:
        figure.suptitle(title, fontsize="small")
    if limits is not None:
        ax.set_xlim(limits[0])
        ax.set_ylim(limits[1])
        ax.set_aspect("equal", adjustable="box")
    ax.tick_params(labelsize="x-small")
    ax.ticklabel_format(style="sci", scilimits=(-2, 3), useMathText=True)
    classes = np.unique(labels)
    scatters = [ax.scatter(*trajectory[0, labels == k].T, s=POINT_SIZE, color=CLASS_COLORS[k % 10],
                           linewidths=0, alpha=0.85, label=f"class {k}") for k in classes]
    ax.legend(loc="upper right", fontsize="x-small", markerscale=1.5)
    marker = ax.text(0.5, 0.5, f"non-finite\nfrom layer {first_nonfinite_layer}", transform=ax.transAxes,
                     ha="center", va="center", color="0.35", fontsize="large", visible=False)

    def draw(layer):
        ax.set_title(_layer_title(layer, None if accuracy is None else accuracy[layer]), fontsize="medium")
        nonfinite = _is_nonfinite(layer, first_nonfinite_layer)
        marker.set_visible(nonfinite)
        for scatter, k in zip(scatters, classes):
            scatter.set_visible(not nonfinite)
            if not nonfinite:
                scatter.set_offsets(trajectory[layer, labels == k])
        if limits is None and not nonfinite:
            x_limits, y_limits = _limits(trajectory[layer])
            ax.set_xlim(x_limits)
            ax.set_ylim(y_limits)
        return [*scatters, marker]

    animation = FuncAnimation(figure, draw, frames=frame_layers(depth, max_frames), interval=1000 / fps, blit=False,
                              cache_frame_data=False)
    return figure, animation


# ---------------------------------------------------------------------------------------
# Writing everything for one run (the CLI calls this; every file is written atomically).

def _settings(record) -> str:
    """The run's settings, e.g. "circles: plain block, h = 1, depth 100"."""
    config = record.config
    if not config:
        return f"depth {record.depth}"
    # Records written before these options existed hold none of them: the paper's defaults.
    beyond = [value for key, default in (("integrator", "euler"), ("step_size_policy", "fixed"))
              if (value := config.get(key, default)) != default]
    if config.get("levels", 1) > 1:
        beyond.append(f"{config['levels']} levels")
    return (f"{config['data']}: {config['block']} block, h = {config['step_size']:g}, depth {config['depth']}"
            + "".join(f", {item}" for item in beyond))


def _title(record, n_members: int = 1) -> str:
    """The settings and the member drawn: "... (seed S, median of N: test accuracy A)"."""
    drawn = f"seed {record.seed}, median of {n_members}" if n_members > 1 else f"seed {record.seed}"
    return f"{_settings(record)} ({drawn}: test accuracy {record.test_accuracy:.3f})"


def _gif_and_mp4_writer(mp4_path, fps):
    """A matplotlib movie writer that renders each frame once and writes it to a GIF and an MP4.

    The GIF is what ``PillowWriter`` writes (RGBA frames, ``duration = 1000 / fps``, looped);
    the MP4 (H.264) goes through the ffmpeg binary of the ``imageio-ffmpeg`` wheel, so no
    system ffmpeg is needed. Rendering is the costly part of an animation: one render for
    both files halves it.
    """
    from io import BytesIO

    import imageio_ffmpeg
    from matplotlib.animation import AbstractMovieWriter
    from PIL import Image

    class GifAndMp4Writer(AbstractMovieWriter):
        def setup(self, fig, outfile, dpi=None):
            super().setup(fig, outfile, dpi=dpi)
            self._frames = []
            # macro_block_size 2: H.264 in yuv420p needs even sides, nothing more (the default 16 rescales).
            self._mp4 = imageio_ffmpeg.write_frames(str(mp4_path), self.frame_size, pix_fmt_in="rgba", fps=fps,
                                                    macro_block_size=2, ffmpeg_log_level="error")
            self._mp4.send(None)

        def grab_frame(self, **savefig_kwargs):
            buffer = BytesIO()
            self.fig.savefig(buffer, **{**savefig_kwargs, "format": "rgba", "dpi": self.dpi})
            rgba = buffer.getbuffer()
            self._frames.append(Image.frombuffer("RGBA", self.frame_size, rgba, "raw", "RGBA", 0, 1))
            self._mp4.send(bytes(rgba))

        def finish(self):
            self._mp4.close()
            self._frames[0].save(self.outfile, save_all=True, append_images=self._frames[1:],
                                 duration=int(1000 / self.fps), loop=0)

    return GifAndMp4Writer(fps=fps)


def write_propagation_figures(records, out, layers=None, axes_modes=AXES_MODES, animate=True,
                              fps=20, dpi=60, static_dpi=150, max_frames=None) -> list[Path]:
    """Draw every picture of ``records`` into the folder ``out``; returns the paths written.

    Grids, per-layer curves and animations show the median member (``records.median``);
    animations show every layer, or ``max_frames`` layers evenly spread (see ``frame_layers``).

    Files: ``grid-{mode}.png/.svg`` per axes mode, ``layer-accuracy.png/.svg``,
    ``feature-scale.png/.svg``, with more than one member ``seed-bands.png/.svg``, and with
    ``animate`` ``propagation-{mode}.gif`` (Pillow) and ``propagation-{mode}.mp4`` (H.264).
    """
    for mode in axes_modes:
        _check_axes_mode(mode)
    out = Path(out)
    record = records.median
    title = _title(record, len(records.members))
    nonfinite = record.first_nonfinite_layer
    written = []

    def save_figure(figure, stem):
        for suffix in (".png", ".svg"):
            written.append(write_atomically(out / f"{stem}{suffix}", lambda path, s=suffix: figure.savefig(
                path, format=s[1:], dpi=static_dpi)))

    for mode in axes_modes:
        save_figure(plot_propagation_grid(record.trajectory, record.labels, layers, record.head_accuracy, mode,
                                          nonfinite, title=f"{title}; {mode} axes"), f"grid-{mode}")
    save_figure(plot_layer_accuracy(record.head_accuracy, record.probe_accuracy, first_nonfinite_layer=nonfinite,
                                    title=title), "layer-accuracy")
    save_figure(plot_feature_scale(record.max_abs_feature, record.mean_step_norm, first_nonfinite_layer=nonfinite,
                                   title=title), "feature-scale")
    if len(records.members) > 1:
        save_figure(plot_seed_bands(records.stacked("head_accuracy"), records.stacked("max_abs_feature"),
                                    records.seeds, title=_settings(record)), "seed-bands")
    if animate:
        for mode in axes_modes:
            figure, animation = propagation_animation(record.trajectory, record.labels, record.head_accuracy,
                                                      mode, nonfinite, title=title, fps=fps, dpi=dpi,
                                                      max_frames=max_frames)
            # Each file is renamed into place only once complete (the MP4 after the GIF).
            written.append(write_atomically(out / f"propagation-{mode}.mp4", lambda mp4: written.append(
                write_atomically(out / f"propagation-{mode}.gif", lambda gif, mp4=mp4: animation.save(
                    gif, writer=_gif_and_mp4_writer(mp4, fps), dpi=dpi)))))
    return written
