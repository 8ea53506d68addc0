"""astro-eddy's ``rotationmap``, the facade scripts use: the class
(:mod:`.rotationmap`: loading, priors, ``fit_map``, continuing) and its three
mixins, the map's own methods (:mod:`.map_methods`), the figures
(:mod:`.figures`) and the after-fit analysis (:mod:`.after_fit`).

(Before they were a package these were ``eddy_widgets.rotationmap``,
``rotationmap_data``, ``rotationmap_figures`` and ``rotationmap_after_fit``;
those names still import.)
"""

from .rotationmap import rotationmap

__all__ = ["rotationmap"]
