"""The embedded synthetic AT-USTC dataset (``atustc synth``).

:func:`synthesize` writes ``pXXX-dYY-cZZ/camNN-fF-FFFF.jpg`` crops (cameras 1-8 RGB, 9-16 IR,
flags 0-10) drawn deterministically from a seed: identity cues that survive a change of clothes,
outfit cues, camera cues, and an IR rendering that is not the visible luminance.
"""

from atustc.synth.config import SIZES, SYNTH_VERSION, SynthConfig
from atustc.synth.generate import SynthResult, render_image, synthesize
from atustc.synth.plan import Plan, make_plan

__all__ = ["SIZES", "SYNTH_VERSION", "Plan", "SynthConfig", "SynthResult", "make_plan", "render_image", "synthesize"]
