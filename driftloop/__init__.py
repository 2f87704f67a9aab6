"""driftloop: keeps a deployed model honest."""
__version__ = "0.1.0"
