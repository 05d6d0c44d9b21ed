"""The Scale v1 API over truthset (docs/scale.md): the official ``scaleapi`` client works against
``/scale/v1`` unchanged. An adapter over truthset's services, with no data model of its own."""

from truthset.compat.scale._app import PREFIX, build, install, install_error_shape
from truthset.compat.scale._callbacks import deliver as deliver_callback

__all__ = ["PREFIX", "build", "deliver_callback", "install", "install_error_shape"]
