"""Tiny random FLUX components (transformer, VAE, CLIP and T5 encoders, offline tokenizers) for tests and benchmarks.

Built from configs in code, as diffusers' own tests do; nothing is downloaded. The weights are random:
anything they generate is noise, so the "tiny-random" engine exists only for tests and benchmarks.
"""
from __future__ import annotations

import string

import torch

TINY_SIDE = 64  # image side in pixels; VAE factor 2 and patch 2 → a 16×16 token grid


def tiny_tokenizer(model_max_length: int):
    """A character-level fast tokenizer built offline (no vocabulary download)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    chars = list(string.ascii_lowercase + string.digits + string.punctuation + " ")
    vocab = {tok: i for i, tok in enumerate(["<pad>", "<unk>", "<s>", "</s>"] + chars)}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Split(pattern="", behavior="isolated")
    tok = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token="<pad>",
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        model_max_length=model_max_length,
    )
    tok.backend_tokenizer.normalizer = None
    return tok


def tiny_transformer(num_layers: int = 2, num_single_layers: int = 3, seed: int = 0):
    from diffusers import FluxTransformer2DModel

    torch.manual_seed(seed)
    return FluxTransformer2DModel(
        patch_size=1,
        in_channels=4,
        num_layers=num_layers,
        num_single_layers=num_single_layers,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=32,
        pooled_projection_dim=32,
        guidance_embeds=True,
        axes_dims_rope=(4, 4, 8),
    ).eval()


def tiny_vae(seed: int = 0):
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    return AutoencoderKL(
        sample_size=TINY_SIDE,
        in_channels=3,
        out_channels=3,
        block_out_channels=(4, 4),
        layers_per_block=1,
        latent_channels=1,
        norm_num_groups=1,
        use_quant_conv=False,
        use_post_quant_conv=False,
        shift_factor=0.0609,
        scaling_factor=1.5035,
    ).eval()


def tiny_text_encoders(seed: int = 0):
    """(clip_model, clip_tokenizer, t5_model, t5_tokenizer) with hidden sizes matching tiny_transformer()."""
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    tok_clip, tok_t5 = tiny_tokenizer(77), tiny_tokenizer(128)
    torch.manual_seed(seed)
    clip = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tok_clip),
            hidden_size=32,
            intermediate_size=37,
            num_attention_heads=4,
            num_hidden_layers=2,
            max_position_embeddings=77,
            projection_dim=32,
            bos_token_id=tok_clip.bos_token_id,
            eos_token_id=tok_clip.eos_token_id,
            pad_token_id=tok_clip.pad_token_id,
        )
    ).eval()
    t5 = T5EncoderModel(
        T5Config(
            vocab_size=len(tok_t5),
            d_model=32,
            d_kv=8,
            d_ff=37,
            num_layers=2,
            num_heads=4,
            relative_attention_num_buckets=8,
            pad_token_id=tok_t5.pad_token_id,
            eos_token_id=tok_t5.eos_token_id,
            decoder_start_token_id=0,
        )
    ).eval()
    return clip, tok_clip, t5, tok_t5


def tiny_flux_pipeline(num_layers: int = 2, num_single_layers: int = 3, seed: int = 0):
    """A complete FluxPipeline with tiny random components (CPU, float32)."""
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline

    clip, tok_clip, t5, tok_t5 = tiny_text_encoders(seed)
    return FluxPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=tiny_vae(seed),
        text_encoder=clip,
        tokenizer=tok_clip,
        text_encoder_2=t5,
        tokenizer_2=tok_t5,
        transformer=tiny_transformer(num_layers, num_single_layers, seed),
    )
