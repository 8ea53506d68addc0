"""The backend selector: emcee, numpyro NUTS or zeus, the three counts under the
chosen backend's names, the kwarg mapping table and the backend's options.
Labels and defaults come from :data:`eddy_widgets.inference.backends.BACKENDS`.
"""

from __future__ import annotations

import html

import ipywidgets as W
from traitlets import link

from ..inference.backends import BACKENDS, CHAIN_METHODS, COUNT_ARGS, available_backends
from ..session import EMCEE_MOVES, FitSession

__all__ = ["BackendSelector", "mapping_table"]

_STYLE = {"description_width": "initial"}

#: One line of help per option.
OPTION_HELP = {
    "seed": "random seed",
    "scatter": "relative scatter of the walkers' start around p0",
    "moves": "emcee proposal: stretch (default), differential evolution, or DE "
             "with snooker",
    "max_tree_depth": "cap of the doubling tree (2^depth leapfrog steps per draw)",
    "chain_method": "how several chains run",
    "dense_mass": "adapt a dense mass matrix (else diagonal)",
    "target_accept_prob": "step-size adaptation target",
}


def mapping_table() -> str:
    """HTML table: fit_map keyword and each backend's name for it."""
    head = "".join(f"<th style='padding:0 8px'>{html.escape(b)}</th>" for b in BACKENDS)
    rows = []
    for arg in COUNT_ARGS:
        cells = "".join(f"<td style='padding:0 8px'><code>{html.escape(b.counts[arg])}"
                        f"</code></td>" for b in BACKENDS.values())
        rows.append(f"<tr><td style='padding:0 8px'><code>{arg}</code></td>{cells}</tr>")
    return ("<table style='font-size:90%'><tr><th style='padding:0 8px'>fit_map</th>"
            f"{head}</tr>{''.join(rows)}</table>")


def _option_widget(backend: str, key: str, default):
    tip = OPTION_HELP.get(key, "")
    if key == "moves":
        return W.Dropdown(options=list(EMCEE_MOVES), description=key, style=_STYLE,
                          tooltip=tip)
    if key == "chain_method":
        return W.Dropdown(options=list(CHAIN_METHODS), description=key, style=_STYLE,
                          tooltip=tip)
    if key == "max_tree_depth":
        return W.BoundedIntText(min=1, max=15, description=key, style=_STYLE,
                                tooltip=tip, layout=W.Layout(width="200px"))
    if key == "target_accept_prob":
        return W.BoundedFloatText(min=0.05, max=0.99, step=0.05, description=key,
                                  style=_STYLE, tooltip=tip,
                                  layout=W.Layout(width="230px"))
    if isinstance(default, bool):
        return W.Checkbox(description=key, indent=False, tooltip=tip)
    if isinstance(default, int):
        return W.IntText(description=key, style=_STYLE, tooltip=tip,
                         layout=W.Layout(width="170px"))
    if isinstance(default, float):
        return W.FloatText(description=key, style=_STYLE, tooltip=tip,
                           layout=W.Layout(width="200px"))
    return None


class BackendSelector(W.VBox):
    """Pick the sampler, its counts and its options.

    Attributes:
        backend: ToggleButtons ``emcee`` / ``numpyro``.
        counts: ``{fit_map name: IntText}``; each backend keeps its own
            counts (switching shows the chosen backend's, switching back
            restores what was typed), labels follow the backend table.
        chain_message: a warning (orange) when NUTS chains would run one after
            another, with how much longer that makes the run.
        options: ``{backend: {option: widget}}`` (``progress`` is not shown:
            the live view replaces the progress bar).
        optimize: checkbox, find the MAP start before sampling.
    """

    def __init__(self, session: FitSession, **kwargs):
        self.session = session
        self.backend = W.ToggleButtons(options=available_backends(),
                                       tooltips=[BACKENDS[name].description
                                                 for name in available_backends()])
        self.backend.add_class("eddy-backend")
        self.description = W.HTML()
        self.counts = {arg: W.IntText(style=_STYLE, layout=W.Layout(width="190px"))
                       for arg in COUNT_ARGS}
        self.count_message = W.HTML()
        self.chain_message = W.HTML()
        self.optimize = W.Checkbox(description="optimise the start (MAP) first",
                                   indent=False)
        self.mapping = W.HTML(mapping_table())
        self.links = [link((session, "mcmc"), (self.backend, "value")),
                      link((session, "optimize"), (self.optimize, "value"))]
        self.links += [link((session, arg), (w, "value")) for arg, w in self.counts.items()]
        self.options = {}
        self.option_boxes = {}
        for name, spec in BACKENDS.items():
            widgets = {}
            for key, default in spec.options.items():
                widget = _option_widget(name, key, default)
                if widget is None or key == "progress":
                    continue
                widgets[key] = widget
                if key == "moves":
                    self._offer_moves(widget, session.options[name].moves)
                    session.options[name].observe(
                        lambda change, w=widget: self._offer_moves(w, change.new),
                        names=["moves"])
                self.links.append(link((session.options[name], key), (widget, "value")))
            self.options[name] = widgets
            self.option_boxes[name] = W.VBox(list(widgets.values()))
        options = W.VBox(list(self.option_boxes.values()))
        accordion = W.Accordion([self.mapping], titles=["fit_map names per backend"],
                                selected_index=None)
        super().__init__([W.HTML("<h4 style='margin:4px 0'>Sampler</h4>"), self.backend,
                          self.description, W.HBox(list(self.counts.values())),
                          self.count_message, self.chain_message, self.optimize,
                          W.HTML("<b>Options</b> (<code>mcmc_kwargs</code>)"), options,
                          accordion], **kwargs)
        session.observe(self._relabel, names=["mcmc"])
        session.observe(self._show_checks, names=["issues"])
        session.observe(self._show_chain_warning, names=["mcmc", "nwalkers"])
        session.options["numpyro"].observe(self._show_chain_warning,
                                           names=["chain_method"])
        self._relabel()
        self._show_checks()
        self._show_chain_warning()

    def _offer_moves(self, dropdown, moves) -> None:
        """Offer a move object loaded from a script beside the named moves (it
        stays on offer when another move is picked)."""
        if isinstance(moves, str) or moves is getattr(self, "_custom_move", None):
            return
        self._custom_move = moves
        options = [(name, name) for name in EMCEE_MOVES]
        options.append((f"custom: {type(moves).__name__}", moves))
        dropdown.options = options

    def _relabel(self, change=None) -> None:
        backend = BACKENDS[self.session.mcmc]
        for arg, widget in self.counts.items():
            label = backend.count_label(arg)
            widget.description = label
            widget.tooltip = (f"fit_map's {arg}" if label != arg else
                              f"fit_map's {arg} (default {backend.count_defaults[arg]})")
        self.description.value = f"<i>{html.escape(backend.description)}</i>"
        for name, box in self.option_boxes.items():
            box.layout.display = None if name == backend.name else "none"

    def _show_checks(self, change=None) -> None:
        issues = self.session.issues
        msgs = [issues[a] for a in COUNT_ARGS if a in issues]
        self.count_message.value = "".join(
            f"<div style='color:#c62828'>{html.escape(m)}</div>" for m in msgs)

    def _show_chain_warning(self, change=None) -> None:
        text = self.session.chain_warning()
        self.chain_message.value = (f"<div style='color:#b26a00'>{html.escape(text)}</div>"
                                    if text else "")
