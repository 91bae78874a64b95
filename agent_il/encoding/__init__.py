"""Encoder backends and the text -> embedding cache."""
