"""storylang: compile a plain-text screenplay into a film."""

__version__ = "0.1.0"
