"""``winwin demo``: the whole story on one machine (see :mod:`.run`)."""

from services.demo.run import run_demo

__all__ = ["run_demo"]
