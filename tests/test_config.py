"""YAML configs: partial nested mappings override the field's own defaults; bad keys are named."""

from __future__ import annotations

import pytest

from nerfhead.config import from_dict
from nerfhead.errors import InputError
from nerfhead.ops.hashgrid import ERNERF_TRIPLANE
from nerfhead.train.run import TrainConfig


def test_partial_nested_mapping_keeps_the_field_default():
    cfg = from_dict(TrainConfig, {"model": {"head": {"encoding": {"levels": 8}}}, "lips": {"steps": 7}})
    enc = cfg.model.head.encoding
    assert enc.levels == 8 and enc.log2_table_size == ERNERF_TRIPLANE.log2_table_size and enc.dim == 2
    assert cfg.lips.steps == 7 and cfg.lips.lips_every == 2  # the lips stage's own defaults stay


def test_presets_load_and_unknown_keys_are_named(tmp_path):
    for name in ("quick", "cpu", "full"):
        assert TrainConfig.load(name).head.steps > 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("head:\n  stpes: 10\n")
    with pytest.raises(InputError, match="stpes"):
        TrainConfig.load(bad)
    with pytest.raises(InputError, match="no training preset 'nope'"):
        TrainConfig.load("nope")


def test_unknown_feature_extractor_is_one_line_before_anything_is_written(sample_identity, tmp_path):
    from nerfhead.avatar.load import model_dir
    from nerfhead.train.run import train_identity

    cfg = tmp_path / "features.yaml"
    cfg.write_text("features: hubert\n")
    folder = model_dir(sample_identity)
    before = sorted(folder.rglob("*")) if folder.exists() else None  # (the trained fixture may share it)
    with pytest.raises(InputError, match="unknown feature extractor 'hubert'; available: default, mel80, whisper"):
        train_identity(sample_identity.name, config=cfg, root=sample_identity.root.parent)
    assert (sorted(folder.rglob("*")) if folder.exists() else None) == before
    with pytest.raises(InputError, match="mouth_from must be audio or rule"):
        from nerfhead.field.model import ModelConfig, ModelMeta, TalkingHeadModel

        TalkingHeadModel(ModelConfig(mouth_from="lips"), ModelMeta(4, 6, 16, [[-1] * 3, [1] * 3], {}, [8, 8],
                                                                   {"fx": 8, "fy": 8, "cx": 4, "cy": 4}))
