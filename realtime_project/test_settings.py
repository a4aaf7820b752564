"""The settings the test suite runs with (pyproject: ``DJANGO_SETTINGS_MODULE``): exactly
``realtime_project.settings``, after giving the run a secret key of its own.

The hub has no built-in key (PROTOCOL.md §2), and pytest-django imports the settings before
any conftest runs, so this is where a run makes one up. It goes into ``os.environ``: the
daphne and monitor processes the tests start inherit it and accept the same sessions and
JWTs. A key already in the environment wins. Never use this module outside the tests.
"""

import os
import secrets

os.environ.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(48))

from realtime_project.settings import *  # noqa: E402,F401,F403
