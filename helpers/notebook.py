"""What a notebook's setup cell calls so that its outputs show the lesson, not Lightning's banners."""

from __future__ import annotations

import logging

# Lightning's info lines that say nothing about the lesson and differ between machines: which
# accelerators exist, and tips that advertise its cloud products.
BANNERS = ("GPU available:", "TPU available:", "HPU available:", "💡 Tip:")
LIGHTNING_INFO_LOGGER = "pytorch_lightning.utilities.rank_zero"


class _DropBanners(logging.Filter):
    """Drop log records whose message starts with one of `BANNERS`."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(BANNERS)


def quiet_lightning() -> None:
    """Hide Lightning's device-availability lines and tips; every other message (summaries, warnings) stays.

    Calling it again adds nothing: the filter is installed once per process.
    """
    logger = logging.getLogger(LIGHTNING_INFO_LOGGER)
    if not any(isinstance(f, _DropBanners) for f in logger.filters):
        logger.addFilter(_DropBanners())
