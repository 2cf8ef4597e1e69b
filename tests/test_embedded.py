"""The embedded model: exact pixel-space codec, save/load round trip, and the engine on an untrained copy."""
import numpy as np
import pytest
import torch

from legend_demo.embedded.model import EmbeddedConfig, PixelCodec, load_model, new_transformer, save_model

SMALL = EmbeddedConfig(side=32, space_to_depth=2, num_layers=1, num_single_layers=2, default_steps=2)


def test_pixel_codec_is_lossless_and_local():
    codec = PixelCodec(4)
    images = torch.rand(2, 128, 128)
    tokens = codec.encode_batch(images)  # (2, 256, 64)
    assert tokens.shape == (2, 256, 64) and codec.token_grid(128) == (16, 16)
    torch.testing.assert_close(codec.unpack(tokens, 128), images * 2 - 1)
    spot = torch.zeros(1, 128, 128)
    spot[0, 40:48, 88:96] = 1.0  # one 8×8 cell: token row 5, column 11
    hot = (codec.encode_batch(spot) > -1).any(-1)[0].nonzero().flatten().tolist()
    assert hot == [5 * 16 + 11]
    np.testing.assert_allclose(codec.decode(codec.encode_batch(images), 128), images.numpy(), atol=1e-6)
    with pytest.raises(ValueError, match="multiple of 8"):
        codec.token_grid(100)


def test_save_load_round_trip_keeps_weights_and_config(tmp_path):
    config = EmbeddedConfig(side=32, space_to_depth=2, num_layers=1, num_single_layers=1, vital_layers=(0, 1))
    model = new_transformer(config, seed=1)
    save_model(tmp_path / "m", model, config)
    loaded, config2, strength = load_model(tmp_path / "m")
    assert config2 == config and strength is None
    for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        torch.testing.assert_close(b, a.half().float(), msg=name)  # stored in fp16


def test_engine_runs_gbca_on_an_untrained_copy(tmp_path, monkeypatch):
    save_model(tmp_path / "m", new_transformer(SMALL), SMALL)
    monkeypatch.setenv("LEGEND_EMBEDDED_PATH", str(tmp_path / "m"))
    from legend_demo.engines import embedded
    from legend_demo.engines.base import GenerationRequest

    assert embedded.availability()[0]
    engine = embedded.load()
    assert engine.name == "embedded" and engine.default_vital_layers == (0, 1, 2)
    image = np.random.default_rng(0).random((40, 36)).astype(np.float32)
    result = engine.generate(GenerationRequest(image=image, progression_text="new left pleural effusion",
                                               points=[{"x": 30, "y": 35}], bias_strength=2.0))
    assert result.followup.shape == (32, 32) and result.engine == "embedded"
    assert [layer.layer for layer in result.layers] == [0, 1, 2]
    assert result.provenance["checkpoint_fingerprints"]["transformer"]["sha256"]


def test_engine_is_unavailable_without_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("LEGEND_EMBEDDED_PATH", str(tmp_path / "nothing"))
    from legend_demo.engines import embedded
    from legend_demo.errors import EngineUnavailableError

    ok, reason = embedded.availability()
    assert not ok and "no embedded model weights" in reason
    with pytest.raises(EngineUnavailableError, match="no embedded model weights"):
        embedded.load()
