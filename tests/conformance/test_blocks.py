"""Every registered block kind through the same checks, read from its declarations (see conftest.py here):
its example round-trips through the grammar; its declared parameters drive ``template`` and ``subs``; its torch
module scales as ``degree`` and ``pre_degree`` declare and builds on the meta device with its drawn shapes; its
example is predicted and sampled."""
from __future__ import annotations

import pytest

from sigprop.theory import BLOCKS

KINDS = sorted(BLOCKS)


@pytest.mark.parametrize("kind", KINDS)
def test_example_parses_and_round_trips(kind, block_checks):
    block_checks.round_trip(kind)


@pytest.mark.parametrize("kind", KINDS)
def test_declared_parameters_drive_subs_and_template(kind, block_checks):
    block_checks.parameters(kind)


@pytest.mark.parametrize("kind", KINDS)
def test_torch_module_scales_as_declared(kind, block_checks):
    block_checks.scaling(kind)


@pytest.mark.parametrize("kind", KINDS)
def test_meta_device_build_has_the_drawn_shapes(kind, block_checks):
    block_checks.shapes(kind)


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_example_predicted_and_sampled(kind, block_checks, criterion):
    block_checks.sampled(kind, criterion)
