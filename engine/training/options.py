"""Training choices as plain names, importable without torch (the CLI builds its help from
these without paying for a torch import)."""

from __future__ import annotations

# How much of the backbone is trained, from cheapest to most expensive, as the number of
# final backbone stages unfrozen. 'head': only the projection (the backbone's pooled
# features are cached); 'conv': plus the final 1x1 conv; 'lastN': plus the last N blocks.
UNFREEZE: dict[str, int] = {"head": 0, "conv": 1, "last1": 2, "last2": 3, "last3": 4}

# arcface: one class per SKU over catalog views and confirmed photos; ortho: the seed's
# unsupervised catalog orthogonalisation (catalog only); both: the sum.
LOSSES: tuple[str, ...] = ("arcface", "ortho", "both")

# The fine-tuned model's input side in pixels (the bundled ImageNet model reads 224).
# Phone photos of packaged goods are told apart by their print: 288 px lifted grocery top-1
# from 0.848 to 0.875 over 224 px (bench/learning_lab.py); 320 px gave no more in the product
# bench (0.868 against 0.878) and a bigger feature cache.
TRAIN_INPUT_SIZE = 288

# Held-out photos are photos the model never trains on: the newest HOLDOUT_SHARE of each SKU's
# confirmations, at most about HOLDOUT_MAX in all. A couple of hundred judge a candidate well
# enough; beyond that the share shrinks (grocery, 2640 confirmations: training on all of them
# instead of 85% lifted top-1 from 0.848 to 0.861).
HOLDOUT_SHARE = 0.15
HOLDOUT_MAX = 200
# Fewer held-out photos than this and a candidate's held-out figures decide nothing (the gate
# uses the catalog self-check instead) and are not shown as its measured top-1.
MIN_HELDOUT = 10
# The gate's catalog self-check: one simulated photo per catalog image, at most this many.
CATALOG_CHECK_MAX = 200

# The stages of a fine-tuning run, in order, as its progress reports name them (the run's
# time left is planned per stage: budget.stage_seconds, progress.RunClock).
STAGE_CACHE = "Preparing training images"
STAGE_TRAIN = "Training"
STAGE_EMBED = "Embedding with the new model"  # also what activating a model reports
STAGE_COMPARE = "Comparing with the active model"
