"""Collapsing-domain measures of sampled networks against mean field's finite-batch prediction."""
import numpy as np
import pytest

from sigprop.theory import parse
from sigprop.validate.collapsing import collapsing_rows


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["6*dense(tanh,sw2=1.5,sb2=0.1)", "6*dense(relu,sw2=2)"])
def test_sampled_units_follow_mean_field(arch):
    """Width 384, a batch of 32, 8 networks: the mean over units of each unit's std and sign diversity over the
    batch, within twice its 95% interval of mean field at every pre-activation layer (the doubling allows the
    O(1/width) deviation of a finite network, not a different law)."""
    rows = collapsing_rows(arch, parse(arch), width=384, seeds=8, batch=32)
    assert len(rows) == 12
    for r in rows:
        half = (r["measured_hi"] - r["measured_lo"]) / 2
        assert np.isfinite(r["predicted"]) and abs(r["measured_mean"] - r["predicted"]) < 2 * half + 1e-12, r


def test_batchnorm_units_are_reported_not_predicted():
    rows = collapsing_rows("bn", parse("2*(dense(linear,sw2=2),batchnorm(batch=8),act(relu))"), width=16, seeds=2,
                           batch=8)
    after_bn = [r for r in rows if r["layer"] in (3, 6)]
    assert after_bn and all(np.isnan(r["predicted"]) for r in after_bn)
    assert all(r["measured_mean"] == pytest.approx(1.0) for r in after_bn if r["quantity"] == "unit_std")
