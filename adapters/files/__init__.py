"""Historical sources: news and bar files in every supported layout, and paced playback.

`read_news` and `iter_bars` parse and check files for a replay; `PacedNews` and `PacedBars`
play the same files out in real time as live sources of the paper daemon.
"""

from adapters.files.bars import infer_interval, iter_bars
from adapters.files.news import read_news
from adapters.files.paced import PacedBars, PacedNews, common_origin

__all__ = ["PacedBars", "PacedNews", "common_origin", "infer_interval", "iter_bars", "read_news"]
