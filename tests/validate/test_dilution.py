"""The dilution experiment: the law against mean field (two routes), against sampled networks, and its files."""
import json
import math

import numpy as np
import pytest

from sigprop.numerics import predict
from sigprop.theory import parse
from sigprop.validate import dilution
from sigprop.validate.measure import measure


@pytest.mark.parametrize("beta", [0.1, 0.5, 1.0, 3.0, 10.0])
def test_one_block_law_equals_the_blocks_own_map(beta):
    """k and GSC_r from the branch alone, put into the law, against the block's own mean-field GSC."""
    gsc_r2, p_r = dilution.branch_terms()
    block = math.exp(2 * float(predict(parse(dilution.BLOCK.format(beta=beta))).values["log_gsc"][0]))
    assert dilution.law(1 / (beta**2 * p_r), gsc_r2) == pytest.approx(block, rel=1e-13)


def test_resnet_closed_form_equals_mean_field_iteration():
    gsc_r2, p_r = dilution.branch_terms()
    depths = [1, 3, 10, 40]
    closed = dilution.resnet_law(depths, gsc_r2, 1 / p_r)
    iterated = [float(predict(parse(dilution.RESNET.format(L=L))).values["log_gsc"][0]) for L in depths]
    np.testing.assert_allclose(closed, iterated, rtol=1e-12, atol=1e-14)
    big = dilution.resnet_law([1e6, 2e6], gsc_r2, 1 / p_r)          # the power law: slope (G² − 1)/2 in log L
    assert (big[1] - big[0]) / math.log(2) == pytest.approx((gsc_r2 - 1) / 2, rel=1e-5)


@pytest.mark.slow
def test_sampled_block_follows_the_law():
    """Width 256, 12 seeds, k = 1: GSC² (ratio of quadratic means) within its interval of the law (the
    interval half-width doubled: a finite-width deviation O(1/n) is allowed, not a different law)."""
    gsc_r2, p_r = dilution.branch_terms()
    beta = 1 / math.sqrt(p_r)                                         # k = 1: halfway between skip and branch
    s = measure(parse(dilution.BLOCK.format(beta=beta)), width=256, seeds=12).summary()["log_gsc_qm"]
    half = (s["hi"][0] - s["lo"][0]) / 2
    assert abs(2 * s["mean"][0] - math.log(dilution.law(1.0, gsc_r2))) < 2 * 2 * half


def test_quick_run_writes_its_files(tmp_path):
    meta = dilution.run_dilution(tmp_path, progress=False, log=lambda *a: None)
    names = {p.name for p in tmp_path.iterdir()}
    assert names == {"dilution.csv", "dilution.json", "dilution.md", "dilution_block.png", "dilution_block.pdf",
                     "dilution_resnet.png", "dilution_resnet.pdf"}
    saved = json.loads((tmp_path / "dilution.json").read_text())
    assert saved["law_vs_mean_field"]["block_max_relative"] < 1e-13 and meta["exponent"] > 0.5
    assert "sigprop reproduce dilution --width 48" in (tmp_path / "dilution.md").read_text()
