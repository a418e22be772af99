"""``tmatch serve``: the HTTP API and the web page (static files in ``static/``, no build step).

>>> from tmatch.serve import ServeConfig, create_app
>>> app = create_app(ServeConfig(method="sift", workers=1, warmup=False))
>>> sorted(r.path for r in app.routes if r.path.startswith("/v1/templates"))
['/v1/templates', '/v1/templates/{template_id}', '/v1/templates/{template_id}/match']
"""

from tmatch.serve.app import create_app
from tmatch.serve.config import ServeConfig, default_workers

__all__ = ["ServeConfig", "create_app", "default_workers"]
