"""The embedded model: exact pixel-space codec, save/load round trip, and the engine on an untrained copy."""
import numpy as np
import pytest
import torch

from legend_demo.embedded.model import EmbeddedConfig, PixelCodec, load_model, new_transformer, save_model

SMALL = EmbeddedConfig(side=32, space_to_depth=2, num_layers=1, num_single_layers=2, default_steps=2)


def test_pixel_codec_is_lossless_and_local():
    codec = PixelCodec(4)
    images = torch.rand(2, 128, 128)
    tokens = codec.encode(images)  # (2, 256, 64)
    assert tokens.shape == (2, 256, 64) and codec.token_grid(128) == (16, 16)
    torch.testing.assert_close(codec.unpack(tokens, 128), images * 2 - 1)
    spot = torch.zeros(1, 128, 128)
    spot[0, 40:48, 88:96] = 1.0  # one 8×8 cell: token row 5, column 11
    hot = (codec.encode(spot) > -1).any(-1)[0].nonzero().flatten().tolist()
    assert hot == [5 * 16 + 11]
    np.testing.assert_allclose(codec.decode(codec.encode(images), 128), images.numpy(), atol=1e-6)
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
    assert result.provenance.checkpoint_fingerprints["transformer"]["sha256"]


def test_engine_is_unavailable_without_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("LEGEND_EMBEDDED_PATH", str(tmp_path / "nothing"))
    from legend_demo.engines import embedded
    from legend_demo.core.errors import EngineUnavailableError

    ok, reason = embedded.availability()
    assert not ok and "no embedded model weights" in reason
    with pytest.raises(EngineUnavailableError, match="no embedded model weights"):
        embedded.load()


REFERENCE = EmbeddedConfig(side=32, space_to_depth=2, num_layers=1, num_single_layers=2, default_steps=3,
                           reference_channels=True, refine_channels=4, vital_layers=(0, 2))


def _load_small(tmp_path, monkeypatch, config):
    model = new_transformer(config, seed=3)
    with torch.no_grad():  # a non-zero head, so the refinement path really runs
        model.head.conv3.weight.normal_(0, 0.05)
    save_model(tmp_path / "m", model, config)
    monkeypatch.setenv("LEGEND_EMBEDDED_PATH", str(tmp_path / "m"))
    from legend_demo.engines import embedded

    return model, embedded.load()


def test_reference_conditioned_model_round_trips_with_its_head(tmp_path):
    model = new_transformer(REFERENCE, seed=2)
    save_model(tmp_path / "m", model, REFERENCE)
    loaded, config, _ = load_model(tmp_path / "m")
    assert config == REFERENCE and loaded.flux.config.in_channels == 2 * REFERENCE.token_channels
    torch.testing.assert_close(loaded.head.conv1.weight, model.head.conv1.weight)


def test_keep_region_blending_keeps_the_edit_row_equal_to_the_source_outside_w(tmp_path, monkeypatch):
    from legend_demo.method.edit_region import EditRegion
    from legend_demo.engines.base import GenerationRequest

    _, engine = _load_small(tmp_path, monkeypatch, REFERENCE)
    image = np.random.default_rng(0).random((40, 40)).astype(np.float32)
    request = GenerationRequest(image=image, progression_text="new right lower lobe consolidation",
                                points=[{"x": 10, "y": 30}], sigma_ratio=0.1, bias_strength=2.0,
                                edit_region=EditRegion(scale=1.0))
    result = engine.generate(request)
    weights = result.provenance.parameters
    assert weights["keep_region_blending"] and weights["start"] == "noise" and weights["reference_conditioned"]
    grid = engine.token_grid
    from legend_demo.method.edit_region import token_weights

    w = token_weights(result.frame.points_to_model(request.points), 32, grid, 0.1, 1.0)
    outside = np.kron(w == 0, np.ones((4, 4), bool))  # 4-px tokens at side 32 (space-to-depth 2, 2×2 packing)
    assert outside.any() and (~outside).any()
    np.testing.assert_array_equal(result.followup[outside], result.source_reconstruction[outside])
    assert np.abs(result.followup - result.source_reconstruction)[~outside].max() > 1e-4
    unblended = engine.generate(GenerationRequest(**{**request.__dict__, "edit_region": EditRegion(keep_blend=False)}))
    assert np.abs(unblended.followup - unblended.source_reconstruction)[outside].max() > 1e-4


def test_seeds_give_different_samples_without_inversion(tmp_path, monkeypatch):
    from legend_demo.engines.base import GenerationRequest

    _, engine = _load_small(tmp_path, monkeypatch, REFERENCE)
    image = np.random.default_rng(1).random((40, 40)).astype(np.float32)
    make = lambda seed: engine.generate(GenerationRequest(image=image, progression_text="new effusion",  # noqa: E731
                                                          points=[{"x": 20, "y": 20}], seed=seed, output_mode="model-view"))
    a, b, again = make(0), make(1), make(0)
    assert np.abs(a.followup - b.followup).max() > 1e-3
    np.testing.assert_array_equal(a.followup, again.followup)
    assert a.film.mode == "model-view" and a.film.display.shape == (40, 40)


def test_reports_name_checkpoints_without_server_paths(tmp_path, monkeypatch):
    """Issue 12 §12: provenance names and hashes, never absolute paths (load source, fingerprints, text encoder)."""
    import json

    from legend_demo.engines.base import GenerationRequest

    _, engine = _load_small(tmp_path, monkeypatch, REFERENCE)
    result = engine.generate(GenerationRequest(image=np.random.default_rng(0).random((40, 40)).astype(np.float32),
                                               progression_text="new effusion", points=[{"x": 20, "y": 20}]))
    text = json.dumps(result.report())
    assert str(tmp_path) not in text and "site-packages" not in text and "/root" not in text
    prints = result.provenance.checkpoint_fingerprints
    assert prints["transformer"]["source"] == "transformer" and prints["transformer"]["sha256"]
    assert result.provenance.load["source"] == "m" and engine.checkpoint == "embedded (m)"


def test_location_free_text_keeps_the_finding_and_direction_and_drops_the_place():
    from legend_demo.embedded.captions import LocationFreeText, without_location

    assert without_location("New right lower lobe consolidation.") == "New consolidation."
    assert without_location("The LEFT pleural effusion has decreased.") == "The pleural effusion has decreased."
    assert without_location("Heart size has increased.") == "Heart size has increased."
    assert without_location("Brightness unchanged") == "Brightness unchanged"  # "right" only as a whole word
    seen = []
    encoder = LocationFreeText(lambda prompts: seen.extend(prompts) or (None, None))
    encoder(["Right apical pneumothorax, increased.", "Left base atelectasis"])
    assert seen == ["pneumothorax, increased.", "atelectasis"]


def test_a_location_free_model_encodes_texts_without_location_and_says_so(tmp_path, monkeypatch):
    from dataclasses import replace

    config = replace(SMALL, location_free_text=True)
    save_model(tmp_path / "m", new_transformer(config), config)
    monkeypatch.setenv("LEGEND_EMBEDDED_PATH", str(tmp_path / "m"))
    from legend_demo.engines import embedded
    from legend_demo.engines.base import GenerationRequest

    engine = embedded.load()
    image = np.random.default_rng(0).random((32, 32)).astype(np.float32)
    request = dict(image=image, points=[{"x": 8, "y": 20}], steps=2, seed=0)
    a = engine.generate(GenerationRequest(progression_text="new right lower lobe consolidation", **request))
    b = engine.generate(GenerationRequest(progression_text="new left upper lobe consolidation", **request))
    np.testing.assert_array_equal(a.followup, b.followup)  # only the points place the change
    assert a.provenance.parameters["location_free_text"] is True
