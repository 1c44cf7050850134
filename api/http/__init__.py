"""The HTTP interface: :func:`create_app` for a container, :func:`app_from_env` for a worker of
``reintegration api --workers N``. See :mod:`api.http.app`."""

from api.http.app import app_from_env, create_app

__all__ = ["app_from_env", "create_app"]
