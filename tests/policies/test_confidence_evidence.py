"""Invariant 4: the model's own confidence never authorizes anything by itself."""

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from policies.actions import ConfidenceEvidence

UNIT = st.decimals(min_value=0, max_value=1, places=3)


@given(UNIT)
def test_self_report_alone_scores_at_most_point_four(claimed: Decimal) -> None:
    for samples in (1, 3):
        evidence = ConfidenceEvidence(
            self_reported=claimed, sample_agreement=Decimal(1), samples=samples
        )
        if samples == 1:  # one sample proves nothing, no log-probabilities either
            assert evidence.score <= Decimal("0.4")


@given(UNIT, UNIT, st.integers(min_value=0, max_value=5))
def test_self_report_moves_the_score_by_at_most_point_two(
    low: Decimal, agreement: Decimal, repairs: int
) -> None:
    def score(claimed: Decimal) -> Decimal:
        return ConfidenceEvidence(
            self_reported=claimed, sample_agreement=agreement, samples=3, repair_count=repairs
        ).score

    assert Decimal(0) <= score(Decimal(1)) - score(low) <= Decimal("0.2")


def test_agreement_and_token_probability_raise_the_score() -> None:
    weak = ConfidenceEvidence(self_reported=Decimal(1), sample_agreement=Decimal("0.5"), samples=2)
    strong = ConfidenceEvidence(
        self_reported=Decimal(1),
        sample_agreement=Decimal(1),
        samples=2,
        mean_token_logprob=Decimal("-0.05"),
    )
    assert strong.score > Decimal("0.9") > weak.score
