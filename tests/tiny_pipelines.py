"""Tiny random-weight video (and audio) pipelines, built offline for the diffusers tests.

Each builder returns a real diffusers pipeline of the class a published checkpoint uses
(``WanPipeline``, ``WanImageToVideoPipeline``, ``LTXPipeline``, ``StableAudioPipeline``...)
with components a few kilobytes large, so the engine's real code paths (loading from a
saved directory, family detection, the denoising loop, decoding) run on the CPU in about a
second. The tokenizer is a word-level one built from :data:`WORDS`, so nothing is fetched
from the hub. Seeds are fixed: two builds of the same pipeline have identical weights.

Adapted from ``shared/notes/tiny_offline_pipelines.py`` (facts checked with torch 2.13,
diffusers 0.42.1, transformers 5.23).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

WORDS = (
    "a",
    "the",
    "cat",
    "dog",
    "fox",
    "dance",
    "monkey",
    "running",
    "through",
    "snow",
    "forest",
    "city",
    "night",
    "blurry",
    "negative",
)
"""The tokenizer's whole vocabulary; other words become ``<unk>``."""

TEXT_DIM = 32
"""Hidden size of the tiny T5/UMT5 text encoders."""


def make_tokenizer(words: tuple[str, ...] = WORDS, max_length: int = 64) -> Any:
    """A T5-like word-level fast tokenizer (``<pad>`` = 0, ``</s>`` = 1)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "</s>", "<unk>"]
    vocab = {token: index for index, token in enumerate(specials + list(words))}
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", vocab["</s>"])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        model_max_length=max_length,
    )


def make_text_encoder(vocab_size: int, umt5: bool = False) -> Any:
    import torch
    from transformers import T5Config, T5EncoderModel, UMT5Config, UMT5EncoderModel

    config_type = UMT5Config if umt5 else T5Config
    config = config_type(
        vocab_size=vocab_size,
        d_model=TEXT_DIM,
        d_kv=8,
        d_ff=37,
        num_layers=2,
        num_heads=4,
        relative_attention_num_buckets=8,
        dropout_rate=0.0,
        decoder_start_token_id=0,
        pad_token_id=0,
        eos_token_id=1,
    )
    torch.manual_seed(0)
    model = UMT5EncoderModel(config) if umt5 else T5EncoderModel(config)
    return model.eval()


def _wan_vae() -> Any:
    import torch
    from diffusers import AutoencoderKLWan

    torch.manual_seed(0)
    return AutoencoderKLWan(
        base_dim=3,
        z_dim=16,
        dim_mult=[1, 1, 1, 1],
        num_res_blocks=1,
        temperal_downsample=[False, True, True],
    )


def _wan_transformer(
    in_channels: int = 16, image_dim: int | None = None, pos_embed_seq_len: int | None = None
) -> Any:
    import torch
    from diffusers import WanTransformer3DModel

    torch.manual_seed(0)
    return WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=12,
        in_channels=in_channels,
        out_channels=16,
        text_dim=TEXT_DIM,
        freq_dim=256,
        ffn_dim=32,
        num_layers=2,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32,
        image_dim=image_dim,
        pos_embed_seq_len=pos_embed_seq_len,
    )


def _flow_unipc() -> Any:
    from diffusers import UniPCMultistepScheduler

    return UniPCMultistepScheduler(
        prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0
    )


def wan_t2v(expand_timesteps: bool = False) -> Any:
    """Wan 2.1 text-to-video; ``expand_timesteps`` makes it a Wan2.2 TI2V-5B look-alike."""
    from diffusers import WanPipeline

    tokenizer = make_tokenizer()
    return WanPipeline(
        transformer=_wan_transformer(),
        vae=_wan_vae(),
        scheduler=_flow_unipc(),
        text_encoder=make_text_encoder(len(tokenizer), umt5=True),
        tokenizer=tokenizer,
        transformer_2=None,
        expand_timesteps=expand_timesteps,
    )


def wan_i2v(last_frame: bool = False) -> Any:
    """Wan 2.1 image-to-video with a CLIP image encoder; ``last_frame``: FLF2V-like."""
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler, WanImageToVideoPipeline
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel

    tokenizer = make_tokenizer()
    torch.manual_seed(0)
    image_encoder = CLIPVisionModel(
        CLIPVisionConfig(
            hidden_size=4,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=32,
            intermediate_size=16,
            patch_size=1,
        )
    )
    # CLIP at image_size 32 / patch 1 gives 32 * 32 + 1 tokens per image; FLF2V checkpoints
    # carry a learned position embedding over the tokens of both images.
    tokens = 2 * (32 * 32 + 1) if last_frame else None
    return WanImageToVideoPipeline(
        transformer=_wan_transformer(in_channels=36, image_dim=4, pos_embed_seq_len=tokens),
        vae=_wan_vae(),
        scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
        text_encoder=make_text_encoder(len(tokenizer), umt5=True),
        tokenizer=tokenizer,
        image_encoder=image_encoder,
        image_processor=CLIPImageProcessor(crop_size=32, size=32),
        transformer_2=None,
    )


def _ltx_components() -> dict[str, Any]:
    import torch
    from diffusers import (
        AutoencoderKLLTXVideo,
        FlowMatchEulerDiscreteScheduler,
        LTXVideoTransformer3DModel,
    )

    tokenizer = make_tokenizer()
    torch.manual_seed(0)
    transformer = LTXVideoTransformer3DModel(
        in_channels=8,
        out_channels=8,
        patch_size=1,
        patch_size_t=1,
        num_attention_heads=4,
        attention_head_dim=8,
        cross_attention_dim=32,
        num_layers=2,  # FBCache and MagCache need a head and a tail block
        caption_channels=TEXT_DIM,
    )
    torch.manual_seed(0)
    vae = AutoencoderKLLTXVideo(
        in_channels=3,
        out_channels=3,
        latent_channels=8,
        block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8),
        layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1, 1),
        spatio_temporal_scaling=(True, True, False, False),
        decoder_spatio_temporal_scaling=(True, True, False, False),
        decoder_inject_noise=(False, False, False, False, False),
        upsample_residual=(False, False, False, False),
        upsample_factor=(1, 1, 1, 1),
        timestep_conditioning=False,
        patch_size=1,
        patch_size_t=1,
        encoder_causal=True,
        decoder_causal=False,
    )
    vae.use_framewise_encoding = False
    vae.use_framewise_decoding = False
    return {
        "transformer": transformer,
        "vae": vae,
        "scheduler": FlowMatchEulerDiscreteScheduler(),
        "text_encoder": make_text_encoder(len(tokenizer)),
        "tokenizer": tokenizer,
    }


def ltx_t2v() -> Any:
    from diffusers import LTXPipeline

    return LTXPipeline(**_ltx_components())


def ltx_i2v() -> Any:
    from diffusers import LTXImageToVideoPipeline

    return LTXImageToVideoPipeline(**_ltx_components())


def stable_audio() -> Any:
    """A Stable Audio Open look-alike: stereo, 4 Hz sample rate, at most 2 s long."""
    import torch
    from diffusers import (
        AutoencoderOobleck,
        EDMDPMSolverMultistepScheduler,
        StableAudioDiTModel,
        StableAudioPipeline,
        StableAudioProjectionModel,
    )

    tokenizer = make_tokenizer(max_length=25)
    torch.manual_seed(0)
    transformer = StableAudioDiTModel(
        sample_size=4,
        in_channels=3,
        num_layers=2,
        attention_head_dim=4,
        num_key_value_attention_heads=2,
        out_channels=3,
        cross_attention_dim=4,
        time_proj_dim=8,
        global_states_input_dim=8,
        cross_attention_input_dim=4,
    )
    # The published checkpoint names CosineDPMSolverMultistepScheduler, which needs the
    # torchsde package; the EDM variant is the pipeline's declared type and needs nothing.
    scheduler = EDMDPMSolverMultistepScheduler(
        solver_order=2, prediction_type="v_prediction", sigma_data=1.0, sigma_schedule="exponential"
    )
    torch.manual_seed(0)
    vae = AutoencoderOobleck(
        encoder_hidden_size=6,
        downsampling_ratios=[1, 2],
        decoder_channels=3,
        decoder_input_channels=3,
        audio_channels=2,
        channel_multiples=[2, 4],
        sampling_rate=4,
    )
    text_encoder = make_text_encoder(len(tokenizer))
    torch.manual_seed(0)
    projection = StableAudioProjectionModel(
        text_encoder_dim=TEXT_DIM, conditioning_dim=4, min_value=0, max_value=32
    )
    return StableAudioPipeline(
        transformer=transformer,
        scheduler=scheduler,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        projection_model=projection,
    )


BUILDERS = {
    "wan_t2v": wan_t2v,
    "wan_ti2v": lambda: wan_t2v(expand_timesteps=True),
    "wan_i2v": wan_i2v,
    "wan_flf2v": lambda: wan_i2v(last_frame=True),
    "ltx_t2v": ltx_t2v,
    "ltx_i2v": ltx_i2v,
    "stable_audio": stable_audio,
}
"""Builders by a short name the tests use in parametrization and cache keys."""


def saved(name: str, root: Path) -> Path:
    """Build pipeline ``name`` and ``save_pretrained`` it under ``root``; the directory."""
    directory = root / name
    if not (directory / "model_index.json").is_file():
        BUILDERS[name]().save_pretrained(directory)
    return directory


# -- further families (added with the official recipes) -----------------------------------


def wan_a14b() -> Any:
    """Wan 2.2 T2V-A14B look-alike: a high-noise ``transformer`` and a low-noise
    ``transformer_2``, switched at ``boundary_ratio`` 0.875 (the published value)."""
    from diffusers import WanPipeline

    tokenizer = make_tokenizer()
    return WanPipeline(
        transformer=_wan_transformer(),
        vae=_wan_vae(),
        scheduler=_flow_unipc(),
        text_encoder=make_text_encoder(len(tokenizer), umt5=True),
        tokenizer=tokenizer,
        transformer_2=_wan_transformer(),
        boundary_ratio=0.875,
    )


def wan_vace() -> Any:
    """Wan 2.1 VACE look-alike: one checkpoint for text, first/last frames, reference
    images and video extension (``vace_in_channels``: 16 latent x 2 + 8 x 8 mask)."""
    import torch
    from diffusers import WanVACEPipeline, WanVACETransformer3DModel

    tokenizer = make_tokenizer()
    torch.manual_seed(0)
    transformer = WanVACETransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=12,
        in_channels=16,
        out_channels=16,
        text_dim=TEXT_DIM,
        freq_dim=256,
        ffn_dim=32,
        num_layers=2,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=32,
        vace_layers=[0],
        vace_in_channels=96,
    )
    return WanVACEPipeline(
        tokenizer=tokenizer,
        text_encoder=make_text_encoder(len(tokenizer), umt5=True),
        vae=_wan_vae(),
        scheduler=_flow_unipc(),
        transformer=transformer,
    )


def _tiny_gemma3(vocab_size: int) -> Any:
    """A Gemma 3 text and vision model of a few kilobytes (LTX-2's text encoder)."""
    import torch
    from transformers import (
        Gemma3Config,
        Gemma3ForConditionalGeneration,
        Gemma3TextConfig,
        SiglipVisionConfig,
    )

    text = Gemma3TextConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=1,
        head_dim=8,
        max_position_embeddings=128,
        sliding_window=16,
        pad_token_id=0,
    )
    vision = SiglipVisionConfig(
        hidden_size=8,
        intermediate_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        image_size=16,
        patch_size=8,
    )
    torch.manual_seed(0)
    config = Gemma3Config(
        text_config=text.to_dict(), vision_config=vision.to_dict(), mm_tokens_per_image=4
    )
    return Gemma3ForConditionalGeneration(config).eval()


def ltx2() -> Any:
    """LTX-2 look-alike: video and audio latents denoised together by one transformer,
    decoded by a video VAE and an audio VAE plus vocoder (stereo; the sizes of diffusers'
    own LTX-2 test components, with a Gemma 3 built here instead of downloaded)."""
    import torch
    from diffusers import (
        AutoencoderKLLTX2Audio,
        AutoencoderKLLTX2Video,
        FlowMatchEulerDiscreteScheduler,
        LTX2Pipeline,
        LTX2VideoTransformer3DModel,
    )
    from diffusers.pipelines.ltx2 import LTX2TextConnectors
    from diffusers.pipelines.ltx2.vocoder import LTX2Vocoder

    tokenizer = make_tokenizer()
    tokenizer.padding_side = "left"
    text_encoder = _tiny_gemma3(len(tokenizer))
    hidden = text_encoder.config.text_config.hidden_size
    torch.manual_seed(0)
    transformer = LTX2VideoTransformer3DModel(
        in_channels=4,
        out_channels=4,
        patch_size=1,
        patch_size_t=1,
        num_attention_heads=2,
        attention_head_dim=8,
        cross_attention_dim=16,
        audio_in_channels=4,
        audio_out_channels=4,
        audio_num_attention_heads=2,
        audio_attention_head_dim=4,
        audio_cross_attention_dim=8,
        num_layers=2,
        qk_norm="rms_norm_across_heads",
        caption_channels=hidden,
        rope_double_precision=False,
        rope_type="split",
    )
    torch.manual_seed(0)
    connectors = LTX2TextConnectors(
        caption_channels=hidden,
        text_proj_in_factor=text_encoder.config.text_config.num_hidden_layers + 1,
        video_connector_num_attention_heads=4,
        video_connector_attention_head_dim=8,
        video_connector_num_layers=1,
        video_connector_num_learnable_registers=None,
        audio_connector_num_attention_heads=4,
        audio_connector_attention_head_dim=8,
        audio_connector_num_layers=1,
        audio_connector_num_learnable_registers=None,
        connector_rope_base_seq_len=32,
        rope_theta=10000.0,
        rope_double_precision=False,
        causal_temporal_positioning=False,
        rope_type="split",
    )
    torch.manual_seed(0)
    vae = AutoencoderKLLTX2Video(
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        block_out_channels=(8,),
        decoder_block_out_channels=(8,),
        layers_per_block=(1,),
        decoder_layers_per_block=(1, 1),
        spatio_temporal_scaling=(True,),
        decoder_spatio_temporal_scaling=(True,),
        decoder_inject_noise=(False, False),
        downsample_type=("spatial",),
        upsample_residual=(False,),
        upsample_factor=(1,),
        timestep_conditioning=False,
        patch_size=1,
        patch_size_t=1,
        encoder_causal=True,
        decoder_causal=False,
    )
    vae.use_framewise_encoding = False
    vae.use_framewise_decoding = False
    torch.manual_seed(0)
    audio_vae = AutoencoderKLLTX2Audio(
        base_channels=4,
        output_channels=2,
        ch_mult=(1,),
        num_res_blocks=1,
        attn_resolutions=None,
        in_channels=2,
        resolution=32,
        latent_channels=2,
        norm_type="pixel",
        causality_axis="height",
        dropout=0.0,
        mid_block_add_attention=False,
        sample_rate=16000,
        mel_hop_length=160,
        is_causal=True,
        mel_bins=8,
    )
    torch.manual_seed(0)
    vocoder = LTX2Vocoder(
        in_channels=2 * 8,
        hidden_channels=32,
        out_channels=2,
        upsample_kernel_sizes=[4, 4],
        upsample_factors=[2, 2],
        resnet_kernel_sizes=[3],
        resnet_dilations=[[1, 3, 5]],
        leaky_relu_negative_slope=0.1,
        output_sampling_rate=16000,
    )
    return LTX2Pipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=vae,
        audio_vae=audio_vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        connectors=connectors,
        transformer=transformer,
        vocoder=vocoder,
    )


CHAT_TEMPLATE = (
    "{% for message in messages %}{{ message['content'] if message['content'] is string "
    "else message['content'][0]['text'] }} {% endfor %}"
)
"""Enough of a chat template for pipelines that format prompts as chat messages."""


def _hunyuan_transformer(task: str) -> Any:
    import torch
    from diffusers import HunyuanVideo15Transformer3DModel

    torch.manual_seed(0)
    return HunyuanVideo15Transformer3DModel(
        in_channels=9,
        out_channels=4,
        num_attention_heads=2,
        attention_head_dim=8,
        num_layers=2,  # the block caches need a head and a tail block
        num_refiner_layers=1,
        mlp_ratio=2.0,
        patch_size=1,
        patch_size_t=1,
        text_embed_dim=16,
        text_embed_2_dim=32,
        image_embed_dim=12,
        rope_axes_dim=(2, 2, 4),
        target_size=16,
        task_type=task,
    )


def hunyuan15_i2v() -> Any:
    """HunyuanVideo 1.5 image-to-video look-alike: the text model's parts, an ``i2v``
    transformer and a SigLIP image encoder (the pipeline picks the size from the image)."""
    import torch
    from diffusers import HunyuanVideo15ImageToVideoPipeline
    from transformers import SiglipImageProcessor, SiglipVisionConfig, SiglipVisionModel

    components = dict(hunyuan15().components)
    components["transformer"] = _hunyuan_transformer("i2v").eval()
    torch.manual_seed(0)
    components["image_encoder"] = SiglipVisionModel(
        SiglipVisionConfig(
            hidden_size=12,
            intermediate_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=16,
            patch_size=8,
        )
    ).eval()
    components["feature_extractor"] = SiglipImageProcessor(size={"height": 16, "width": 16})
    return HunyuanVideo15ImageToVideoPipeline(**components)


def hunyuan15() -> Any:
    """HunyuanVideo 1.5 text-to-video look-alike (480p: ``target_size`` below 960): a
    Qwen2.5-VL text model and a ByT5 glyph encoder, guidance through a ``guider``."""
    import torch
    from diffusers import (
        AutoencoderKLHunyuanVideo15,
        FlowMatchEulerDiscreteScheduler,
        HunyuanVideo15Pipeline,
    )
    from diffusers.guiders import ClassifierFreeGuidance
    from transformers import (
        ByT5Tokenizer,
        Qwen2_5_VLTextConfig,
        Qwen2_5_VLTextModel,
        T5Config,
        T5EncoderModel,
    )

    transformer = _hunyuan_transformer("t2v")
    torch.manual_seed(0)
    vae = AutoencoderKLHunyuanVideo15(
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        block_out_channels=(16, 16),
        layers_per_block=1,
        spatial_compression_ratio=4,
        temporal_compression_ratio=2,
        downsample_match_channel=False,
        upsample_match_channel=False,
    )
    tokenizer = make_tokenizer(max_length=2048)
    tokenizer.chat_template = CHAT_TEMPLATE
    torch.manual_seed(0)
    text_encoder = Qwen2_5_VLTextModel(
        Qwen2_5_VLTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=16,
            intermediate_size=16,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=2,
            rope_scaling={"mrope_section": [1, 1, 2], "rope_type": "default", "type": "default"},
            rope_theta=1000000.0,
            bos_token_id=None,
            eos_token_id=None,
        )
    )
    glyph_tokenizer = ByT5Tokenizer()
    torch.manual_seed(0)
    glyph_encoder = T5EncoderModel(
        T5Config(
            vocab_size=len(glyph_tokenizer),
            d_model=32,
            d_kv=8,
            d_ff=37,
            num_layers=2,
            num_heads=4,
            relative_attention_num_buckets=8,
            dropout_rate=0.0,
        )
    )
    return HunyuanVideo15Pipeline(
        text_encoder=text_encoder.eval(),
        tokenizer=tokenizer,
        transformer=transformer.eval(),
        vae=vae.eval(),
        scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0),
        text_encoder_2=glyph_encoder.eval(),
        tokenizer_2=glyph_tokenizer,
        guider=ClassifierFreeGuidance(guidance_scale=1.0),
    )


FAMILY_BUILDERS = {
    "wan_a14b": wan_a14b,
    "wan_vace": wan_vace,
    "ltx2": ltx2,
    "hunyuan15": hunyuan15,
    "hunyuan15_i2v": hunyuan15_i2v,
}
BUILDERS.update(FAMILY_BUILDERS)


def request(model: str = "veo2", **overrides: Any) -> Any:
    """The small generation request the diffusers tests run (1 s, 64x48, seed 7)."""
    from reelforge.engines.base import GenerationRequest

    values = {
        "model": model,
        "prompt": "a fox running through snow",
        "duration_seconds": 1,
        "width": 64,
        "height": 48,
        "seed": 7,
    }
    return GenerationRequest(**{**values, **overrides})
