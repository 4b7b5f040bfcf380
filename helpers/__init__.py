"""Shared code for the Lightning + W&B tutorial series: data, models, tracking and plotting.

The notebooks teach the code they are about and import the rest from here, so that every
notebook trains the same network on the same data split.
"""

__version__ = "0.1.0"
