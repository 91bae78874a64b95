"""The class-incremental benchmark, its out-of-scope figures, reports and plots."""
