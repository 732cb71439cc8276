import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from hypothesis import settings

settings.register_profile("default", max_examples=60, deadline=None)
settings.load_profile("default")
