"""Training of LeGend-Diffusion (thesis §5.3.1) and the vitality analysis (§5.2.1).

- data.py: the ICG-CXR-like pair folders in memory;
- flow.py: rectified-flow training maths (logit-normal t, x_t, target velocity, weighted MSE);
- backbone.py: the trained model behind one small interface (embedded model or any FluxPipeline);
- lora.py: the stage-1 peft LoRA on FLUX (r=16, α=32) and its diffusers-readable file;
- loop.py: learning-rate schedule, time budget, JSONL log, atomic checkpoints;
- stage1.py: flow matching on single radiographs; stage2.py: only s(τ) with vital-layer GBCA;
- features.py + vitality.py: v(l) = 1 − mean cos(Φ(I), Φ(I^(l))) with an offline feature extractor Φ.
"""
