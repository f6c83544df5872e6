"""pillarwatch: keeps a target-architecture progress snapshot true by itself."""

__version__ = "0.1.0"
