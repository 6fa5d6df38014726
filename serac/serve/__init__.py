"""The live editing service: a FastAPI app over a :class:`~serac.editor.SeracEditor`.

``create_app`` builds the app (``serac serve`` runs it with uvicorn); see docs/serving.md.
"""

from serac.serve.app import create_app
from serac.serve.service import EditService

__all__ = ["EditService", "create_app"]
