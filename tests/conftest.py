import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from hypothesis import settings

# "default" draws the same examples on every run, so CI is reproducible; explore new ones by hand with
# HYPOTHESIS_PROFILE=explore python -m pytest
settings.register_profile("default", max_examples=60, deadline=None, derandomize=True)
settings.register_profile("explore", max_examples=1000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
