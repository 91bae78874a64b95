"""The learn step on vectors, with no I/O, and the continual-learning metrics."""
