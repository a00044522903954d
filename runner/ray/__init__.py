"""Ray: the connection to a cluster, and `GradioCall`, a Gradio app as a Ray Data map.

Nothing here imports Ray until it is used (`pip install 'spacerun[ray]'` brings it).
`ray:` replicas (app scripts in Ray actors) are in `runner.launch`, which builds on this.
"""

from ._cluster import RAY_EXTRA, RayError, connected, import_ray
from ._data import GradioCall

__all__ = ["RAY_EXTRA", "GradioCall", "RayError", "connected", "import_ray"]
