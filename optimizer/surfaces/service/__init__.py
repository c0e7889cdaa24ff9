"""The HTTP service (``chipmix serve``; needs the ``server`` extra: fastapi and uvicorn)."""
