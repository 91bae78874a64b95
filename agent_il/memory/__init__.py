"""Labelled records, their Chroma stores, and which exemplars each class keeps."""
