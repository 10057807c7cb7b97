"""The LSAT7 data (Bock & Lieberman 1970; R mirt's ``LSAT7``): 1,000 examinees x 5 items, as
response patterns with frequencies, and the values R mirt publishes for it in its own tests
(philchalmers/mirt, ``tests/testthat/test-01-mirtOne.R``)."""

from __future__ import annotations

import polars as pl

#: (pattern of items 1-5, frequency); the frequencies sum to 1,000.
LSAT7_PATTERNS: list[tuple[str, int]] = [
    ("00000", 12), ("00001", 19), ("00010", 1), ("00011", 7),
    ("00100", 3), ("00101", 19), ("00110", 3), ("00111", 17),
    ("01000", 10), ("01001", 5), ("01010", 3), ("01011", 7),
    ("01100", 7), ("01101", 23), ("01110", 8), ("01111", 28),
    ("10000", 7), ("10001", 39), ("10010", 11), ("10011", 34),
    ("10100", 14), ("10101", 51), ("10110", 15), ("10111", 90),
    ("11000", 6), ("11001", 25), ("11010", 7), ("11011", 35),
    ("11100", 18), ("11101", 136), ("11110", 32), ("11111", 308),
]  # fmt: skip

#: mirt 2PL, ``coef(mirt(expand.table(LSAT7), 1))``: (a, d) per item.
MIRT_2PL = [(0.988, 1.8561), (1.081, 0.808), (1.706, 1.8043), (0.7651, 0.486), (0.7358, 1.8545)]
#: ... and its log-likelihood (measured with mirt 1.47, shared/notes/irt.md).
MIRT_2PL_LOGLIK = -2658.805
#: mirt 2PL with ``SE.type = 'Richardson'``: 95% intervals (a low, a high, d low, d high).
MIRT_2PL_CI_RICHARDSON = [
    (0.6406, 1.3354, 1.5984, 2.1138),
    (0.7501, 1.4119, 0.6291, 0.9869),
    (1.0779, 2.334, 1.4036, 2.205),
    (0.5022, 1.028, 0.3392, 0.6328),
    (0.4395, 1.032, 1.6302, 2.0787),
]
#: ... with ``SE.type = 'SEM'`` (supplemented EM), the same intervals.
MIRT_2PL_CI_SEM = [
    (0.6367, 1.3384, 1.5978, 2.1139),
    (0.7604, 1.4013, 0.6335, 0.9825),
    (1.0868, 2.3281, 1.4028, 2.2076),
    (0.5065, 1.0235, 0.3114, 0.6606),
    (0.4246, 1.0467, 1.6332, 2.0757),
]
#: mirt ``itemfit(mod, 'S_X2')`` on the 2PL: S_X2 per item, all with df 2.
MIRT_2PL_S_X2 = [4.749440, 14.451071, 1.270381, 5.237400, 0.941125]


def lsat7_responses() -> pl.DataFrame:
    """Long responses (user_id, item_id 1-5, is_correct), one row per examinee and item."""
    return responses_of(LSAT7_PATTERNS)


def ci_to_se(low: float, high: float) -> float:
    """The SE behind a normal 95% interval."""
    return (high - low) / (2 * 1.959963984540054)


#: LSAT6 (Bock & Lieberman 1970; mirt's and ltm's ``LSAT6``): 1,000 examinees x 5 items.
LSAT6_PATTERNS: list[tuple[str, int]] = [
    ("00000", 3), ("00001", 6), ("00010", 2), ("00011", 11),
    ("00100", 1), ("00101", 1), ("00110", 3), ("00111", 4),
    ("01000", 1), ("01001", 8), ("01010", 0), ("01011", 16),
    ("01100", 0), ("01101", 3), ("01110", 2), ("01111", 15),
    ("10000", 10), ("10001", 29), ("10010", 14), ("10011", 81),
    ("10100", 3), ("10101", 28), ("10110", 15), ("10111", 80),
    ("11000", 16), ("11001", 56), ("11010", 21), ("11011", 173),
    ("11100", 11), ("11101", 61), ("11110", 28), ("11111", 298),
]  # fmt: skip

#: mirt ``mirt(expand.table(LSAT6), 1, itemtype = 'Rasch', SE = TRUE, SE.type = 'SEM')``:
#: per item (d, 95% low, high), then the latent variance (estimate, low, high). mirt's
#: Rasch frees the latent variance; our 1PL is the same model with theta ~ N(0, 1) and a
#: common slope a = sqrt(variance).
MIRT_LSAT6_RASCH_D = [(2.73, 2.478, 2.983), (0.999, 0.845, 1.152), (0.24, 0.1, 0.38),
                      (1.306, 1.143, 1.47), (2.099, 1.896, 2.303)]  # fmt: skip
MIRT_LSAT6_RASCH_VARIANCE = (0.57, 0.371, 0.77)


def responses_of(patterns: list[tuple[str, int]]) -> pl.DataFrame:
    """Long responses (user_id, item_id 1-5, is_correct) of a pattern table."""
    users, items, correct = [], [], []
    user = 0
    for pattern, freq in patterns:
        for _ in range(freq):
            for j, ch in enumerate(pattern):
                users.append(user)
                items.append(j + 1)
                correct.append(ch == "1")
            user += 1
    return pl.DataFrame({"user_id": users, "item_id": items, "is_correct": correct})
