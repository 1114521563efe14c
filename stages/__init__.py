"""Reproducible word2vec (SGNS) pipeline: one module per DVC stage plus the shared pieces they use."""
