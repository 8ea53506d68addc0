"""The fit set-up and the run of one fit, as one observable object.

:class:`FitSession` is the state the widgets observe (glue-jupyter's "state
apart from the view"): which parameters are free, their start or fixed values,
priors, the mask radii, the MCMC backend with its counts and options, and the
state of the run (status, error, the growing :class:`FitResult`). It converts
exactly to and from ``rotationmap.fit_map``'s arguments, writes a runnable
script, validates the set-up, and runs ``cube.prepare_fit`` /
``FitRun.run`` in a background thread.

It holds no physics and no sampler code: everything numerical happens in
:mod:`eddy_widgets.rotationmap` and :mod:`eddy_widgets.inference`.

Example::

    from eddy_widgets.session import FitSession
    session = FitSession.from_fit_kwargs(p0, params, priors=cube.priors,
                                         cube=cube, mcmc='numpyro', nwalkers=1)
    session.start()          # returns at once; the fit runs in a thread
    session.stop()           # keeps every draw made so far
    session.resume()         # continues where it stopped
    session.wait()           # blocks until the thread has finished
    print(session.result.verdict_text())   # converged? and what to do if not
    session.result.summary_table()

Every run writes a checkpoint (the result with the sampler's state) every
``checkpoint_interval`` seconds and when it stops or ends, by default to
``./eddy_widgets_checkpoints/<date>-<time>.npz``; ``session.checkpoint_file``
is the current run's. A run lost with its kernel goes on with
``session.continue_from(path)`` (or ``cube.continue_fit(result=FitResult.load(path))``).
"""

from __future__ import annotations

from .runner import CHECKPOINT_FOLDER, STATUSES, FitThread, new_checkpoint_path
from .script import EMCEE_MOVES, FitMapCall, emcee_moves
from .settings import (
    BackendOptions,
    ParameterSetting,
    SetupError,
    format_number,
    parse_number,
)
from .state import DEFAULT_FREE, SetupState

__all__ = ["FitSession", "ParameterSetting", "BackendOptions", "SetupError",
           "DEFAULT_FREE", "EMCEE_MOVES", "STATUSES", "CHECKPOINT_FOLDER",
           "emcee_moves", "new_checkpoint_path", "format_number", "parse_number"]


class FitSession(SetupState, FitMapCall, FitThread):
    """The fit set-up and the state of its run; the widgets observe it.

    Set-up (names as ``fit_map`` takes them):

    - ``parameters``: ``{name: ParameterSetting}`` for every table parameter
      (free, value, prior); ``free_order`` lists the free ones in ``p0`` order.
    - ``r_min``, ``r_max``: radial range to fit [arcsec] (``None``: no limit).
    - ``mcmc``: ``'emcee'`` or ``'numpyro'``; ``nwalkers``, ``nburnin``,
      ``nsteps``: the counts (numpyro: num_chains, num_warmup, num_samples)
      of the selected backend; each backend keeps its own (``counts_of``), so
      switching shows that backend's counts; ``optimize``: find the MAP start first.
    - ``options``: ``{backend: BackendOptions}``, the ``mcmc_kwargs`` of each.
    - ``noise``: the likelihood's noise model, ``params['noise']``
      (``fit_map``'s ``noise=``), set with :meth:`set_noise`:
      ``'independent'`` (the default; the noise rows unused and left out of
      ``params`` and the script) or ``'correlated'`` (``noise_scale`` free
      from 1 unless fixed; ``noise_nugget`` / ``noise_width`` fixed or,
      left empty, estimated; ``extra_params['noise_clip']``).

    Checks (updated on every change): ``issues`` ``{name: message}`` of
    invalid entries (they block a run), ``prior_warnings`` ``{name: message}``
    of unbounded flat priors under NUTS (legal but slow), ``valid``.

    Run: ``status`` (one of :data:`STATUSES`), ``error`` (message of an
    exception in the run, ``''`` if none), ``messages`` (warnings the engine
    gave while preparing or running), ``result`` (the growing
    :class:`~eddy_widgets.inference.result.FitResult`; once the run stops or
    ends, ``result.converged``, ``result.warnings`` and
    ``result.verdict_text()`` give its verdict), ``info`` (its
    :class:`~eddy_widgets.inference.samplers.RunInfo`), ``run_id`` (bumped
    for every new run; :meth:`run_label` names the run in words, as the
    dashboard's panels do above results that are not the current run's),
    ``extend_steps`` (draws that :meth:`resume` adds to a finished run).
    ``fit_run`` is the engine's ``FitRun``.

    Checkpoints: ``checkpoint`` is the file each new run writes its result
    (with the sampler's state) to, every ``checkpoint_interval`` seconds and
    when it stops or ends; by default a new
    ``./eddy_widgets_checkpoints/<date>-<time>.npz`` for every run (see
    :func:`new_checkpoint_path`), ``None`` turns them off. A path set by hand
    is used by every run (each new run overwrites it). ``checkpoint_file`` is
    the absolute path of the current run's checkpoint (``''`` when off).

    Views get every chunk of draws with :meth:`observe_chunks`; their
    callbacks run in the fit's thread and should be quick.
    """

    def __init__(self, cube=None, free=DEFAULT_FREE, **kwargs):
        self._init_setup()
        self._init_thread()
        super().__init__(cube=cube, **kwargs)
        self._watch_setup(cube, free)
