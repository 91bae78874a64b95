"""Inputs rejected as unknown, and the discovery of new intents among them."""
