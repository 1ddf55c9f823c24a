"""Sample grids take their colour range from the data's convention (tanh output in [-1, 1]),
never from a guess at the values: a washed-out G is drawn grey, an overshooting one clipped.
Pixels are read back from the PNG the client sends."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from trainer_client.images import _torchvision_make_grid, image_grid_png
from trainer_client.run import Run, RunOptions
from trainer_client.transport import InMemoryTransport


def pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)))


def cells(png: bytes, padding: int = 2, size: int = 8) -> np.ndarray:
    """The image area of the first tile (the padding left out)."""
    return pixels(png)[padding:padding + size, padding:padding + size]


def test_a_tanh_g_whose_outputs_sit_in_0_to_0_1_is_drawn_mid_grey():
    outputs = torch.rand(16, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 0.1
    tile = cells(image_grid_png(outputs))
    assert 128 <= tile.min() and tile.max() <= 141  # (x + 1) / 2 of [0, 0.1]: 127.5-140.3


def test_outputs_beyond_the_range_are_clipped_not_stretched():
    batch = np.zeros((4, 1, 8, 8), "float32")
    batch[0, 0, 0, 0] = 3.0    # overshoots tanh's range
    batch[1, 0, 0, 0] = -3.0
    tile = cells(image_grid_png(batch))
    assert tile[0, 0] == 255            # saturated white
    assert (tile[1:, :] == 128).all()   # the zeros stay mid-grey (min-max made them 127)


def test_a_declared_range_and_per_grid_normalisation_when_asked():
    batch = np.full((4, 1, 8, 8), 0.5, "float32")
    assert (cells(image_grid_png(batch, value_range=(0.0, 1.0))) == 128).all()
    assert (cells(image_grid_png(batch, value_range=(-1.0, 1.0))) == 191).all()
    ramp = np.linspace(0.0, 0.1, 4 * 64, dtype="float32").reshape(4, 1, 8, 8)
    stretched = pixels(image_grid_png(ramp, value_range=None))
    assert stretched.max() == 255 and cells(image_grid_png(ramp, value_range=None))[0, 0] == 0


def test_the_run_draws_its_grids_in_the_range_it_was_given(tmp_path):
    transport = InMemoryTransport()
    run = Run(RunOptions(name="grids", run_id="r1", spool_dir=tmp_path / "spool",
                         transport=transport, flush_interval=60.0, sample_range=(0.0, 1.0)))
    half = torch.full((4, 1, 8, 8), 0.5)
    run.log_images("fake", half, step=0)                                # the run's (0, 1)
    run.log_images("tanh", half, step=0, value_range=(-1.0, 1.0))       # this call's
    run.log_images("auto", torch.linspace(0, 0.1, 256).reshape(4, 1, 8, 8), step=0,
                   normalize=True)
    run.finish(timeout=10.0)
    sent = {m.params["key"]: m.body for m in transport.delivered if m.path.endswith("/samples")}
    assert (cells(sent["fake"]) == 128).all()
    assert (cells(sent["tanh"]) == 191).all()
    assert pixels(sent["auto"]).max() == 255


def test_a_bad_range_is_a_warning_and_the_default(tmp_path, capfd):
    import trainer_client

    run = trainer_client.init("bad-range", sample_range=(1.0, 1.0), offline=True,
                              spool_dir=tmp_path)
    assert run.sample_range == (-1.0, 1.0)
    assert "sample_range" in capfd.readouterr().err
    run.finish(timeout=5.0)


@pytest.mark.skipif(_torchvision_make_grid() is None,
                    reason="torchvision does not import here (PyPI's does not import beside "
                           "this torch build); the grid is tiled by the client itself")
def test_torchvision_tiles_the_same_grid_when_it_imports():
    batch = torch.rand(9, 3, 8, 8) * 2 - 1
    ours = pixels(image_grid_png(batch))
    assert ours.shape == (2 + 3 * 10, 2 + 3 * 10, 3)
