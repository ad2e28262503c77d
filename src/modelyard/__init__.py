"""modelyard: a classification model's whole life, from data to a served bundle."""

__version__ = "0.1.0"

__all__ = ["__version__"]
