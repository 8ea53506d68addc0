"""Matplotlib figures of a fit: walkers, corner, best-fit and residual maps.

Each function returns its figure; nothing is shown or saved here.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from .parameters import label, label_with_unit


def plot_walkers(result, truths: dict | None = None):
    """One panel per free parameter (plus log-probability): every walker or
    chain against draw number, burn-in/warmup shaded."""
    warm = result.chains["warmup"]
    samp = result.chains["sampling"]
    chains = np.concatenate([warm, samp], axis=1)
    nwarm = warm.shape[1]
    ndim = len(result.names)
    fig, axes = plt.subplots(ndim + 1, 1, figsize=(7, 1.3 * (ndim + 1) + 0.6),
                             sharex=True, constrained_layout=True)
    alpha = max(0.05, min(0.6, 3.0 / max(result.nchains, 1)))
    steps = np.arange(chains.shape[1])
    logp = np.concatenate([result.log_prob["warmup"], result.log_prob["sampling"]], axis=1)
    series = [chains[:, :, i] for i in range(ndim)] + [logp]
    names = [label_with_unit(n) for n in result.names] + [r"$\ln p$"]
    for ax, values, name, key in zip(axes, series, names, list(result.names) + [None]):
        for c in range(values.shape[0]):
            ax.plot(steps, values[c], color="k", lw=0.6, alpha=alpha)
        if nwarm:
            ax.axvspan(0, nwarm, color="0.85", zorder=0, lw=0)
        if truths and key in truths and truths[key] is not None:
            ax.axhline(truths[key], color="tab:red", lw=1)
        ax.set_ylabel(name, fontsize=8)
        ax.tick_params(labelsize=7)
    axes[-1].set_xlabel("draw (shaded: burn-in / warmup)")
    if np.isfinite(logp).any():
        finite = logp[np.isfinite(logp)]
        lo = np.percentile(finite, 1)
        axes[-1].set_ylim(lo - 0.05 * abs(lo), finite.max() + 0.05 * abs(lo) + 1)
    fig.suptitle(f"{result.backend}: {result.nchains} "
                 f"{'walkers' if result.backend == 'emcee' else 'chains'}", fontsize=9)
    return fig


def plot_corner(result, truths: dict | None = None):
    """Corner plot of the post-warmup samples."""
    import corner

    samples = result.samples
    truth_values = None
    if truths:
        truth_values = [truths.get(n) for n in result.names]
    ranges = []
    for col in samples.T:
        lo, hi = np.min(col), np.max(col)
        ranges.append((lo, hi) if hi > lo else (lo - 0.5, hi + 0.5))
    return corner.corner(samples, labels=[label(n) for n in result.names],
                         truths=truth_values, truth_color="tab:red",
                         quantiles=[0.16, 0.5, 0.84], show_titles=True,
                         title_fmt=".3g", range=ranges, labelpad=0.15, quiet=True)


def _map_axes(ax, data, title):
    ax.set_xlabel("offset [arcsec]")
    ax.set_ylabel("offset [arcsec]")
    ax.set_xlim(data.extent[0], data.extent[1])
    ax.set_ylim(data.extent[2], data.extent[3])
    ax.set_title(title, fontsize=10)


def _show_velocity(axes, data, maps):
    """Maps [m/s] shown in km/s on the data's 2-98 percentile scale, one
    scale for all; returns the last image (for a colour bar)."""
    finite = data.data[np.isfinite(data.data)]
    vmin, vmax = np.percentile(finite, [2, 98]) / 1e3
    for ax, values in zip(axes, maps):
        im = ax.imshow(values / 1e3, origin="lower", extent=data.extent, cmap="RdBu_r",
                       vmin=vmin, vmax=vmax)
    return im


def _show_residual(ax, data, model, mask):
    """data - model [m/s] (fitted pixels only if ``mask``), centred on zero."""
    resid = data.data - model
    if mask is not None:
        resid = np.where(mask, resid, np.nan)
    rlim = np.nanpercentile(np.abs(resid), 98) if np.isfinite(resid).any() else 1.0
    return ax.imshow(resid, vmin=-rlim, vmax=rlim, origin="lower", extent=data.extent,
                     cmap="RdBu_r")


def _residual_title(mask):
    return "residual (fitted pixels)" if mask is not None else "residual"


def plot_maps(data, model, mask=None, title="model"):
    """Data, model and residual (data - model) side by side; data and model
    share one colour scale, the residual is centred on zero. m/s -> km/s."""
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.9), constrained_layout=True)
    shown = np.where(np.isfinite(data.data), model, np.nan)
    im = _show_velocity(axes[:2], data, [data.data, shown])
    fig.colorbar(im, ax=axes[:2], label=r"$v_0$ [km/s]", shrink=0.9)
    im = _show_residual(axes[2], data, model, mask)
    fig.colorbar(im, ax=axes[2], label="data - model [m/s]", shrink=0.9)
    for ax, name in zip(axes, ["data", title, _residual_title(mask)]):
        _map_axes(ax, data, name)
    return fig


def plot_bestfit(data, model, mask=None):
    """The best-fit model map beside the data, on one colour scale."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.9), constrained_layout=True)
    shown = np.where(np.isfinite(data.data), model, np.nan)
    im = _show_velocity(axes, data, [data.data, shown])
    if mask is not None:
        axes[1].contour(mask.astype(float), [0.5], colors="k", linewidths=0.6,
                        origin="lower", extent=data.extent)
    fig.colorbar(im, ax=axes, label=r"$v_0$ [km/s]", shrink=0.9)
    for ax, name in zip(axes, ["data", "best-fit model (contour: fitted pixels)"
                               if mask is not None else "best-fit model"]):
        _map_axes(ax, data, name)
    return fig


def plot_residual(data, model, mask=None):
    """Residual map data - model [m/s] on a symmetric scale."""
    fig, ax = plt.subplots(figsize=(5.2, 4.2), constrained_layout=True)
    im = _show_residual(ax, data, model, mask)
    fig.colorbar(im, ax=ax, label="data - model [m/s]")
    _map_axes(ax, data, _residual_title(mask))
    return fig
