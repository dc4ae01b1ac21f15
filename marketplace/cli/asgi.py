"""The app factory uvicorn imports in each worker process of `microlend serve --workers N`.

The parent process resolved the settings once (flags, environment, embedded
defaults) and wrote them back as MICROLEND_* variables, which every worker
inherits and reads here.
"""
from __future__ import annotations

import os

from starlette.applications import Starlette

from marketplace.settings import settings_from_env


def app_from_env() -> Starlette:
    from marketplace.app import create_app

    return create_app(settings_from_env(os.environ))
