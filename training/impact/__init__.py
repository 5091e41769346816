"""Impact models: trained on what the news did to the price, not on what it said.

`lorabot train --task impact` (`cli.run`) labels each headline by the abnormal return that
followed it (`labels`), describes the market before it from past bars only (`features`), splits
in time with purging and an embargo (`split`), trains a text-only, a numbers-only and a fusion
model on the same folds (`text`, `heads`, `run`) and scores them out of sample (`report`). The
numbers and fusion folders are served by `adapters/model/impact.py` (`manifest` is what it reads).
"""
