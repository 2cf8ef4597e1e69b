"""The autoregressive LeGend (thesis ch. 4) on transformers' Emu3: [X_A; X_D; X_B] sequences, GBCA through
transformers' AttentionInterface, KV-cached sampling, teacher-forcing profiling.

- vocab.py: Emu3's image/row/end special tokens and the VQ code ⇄ token id maps;
- codec.py: the Emu3VQVAE image tokenizer behind the project's token_grid/encode/decode convention;
- sequence.py: where X_A, X_D and X_B sit in a row, left padding, positions;
- attention.py: the registered GBCA attention function and its per-request state (eq. 4.11);
- capture.py: softmax attention of follow-up queries over keys, for the maps (eqs. 4.2–4.4);
- backbone.py: model + tokenizer + codec + vocab, one forward call;
- sampling.py: KV-cached decoding of X_B with Emu3's logits processors and batched CFG (eq. 4.13);
- profiling.py: layer-wise teacher-forcing profiles with and without GBCA (§4.2.1, Fig. 4.2);
- tiny.py: tiny random Emu3 + tokenizer built in code (tests and the CPU benchmark).
"""
