"""atustc: toolkit and benchmark harness for Anytime Person Re-Identification (AT-ReID).

Importing the package is cheap: nothing here imports torch, timm or pandas. Heavy modules are
imported by the commands that need them.
"""

__version__ = "0.1.0"
