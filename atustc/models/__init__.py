"""Uni-AT and its building blocks (ViT backbone, MoAE, BNNeck heads, losses, pretrained loading).

Importing this package (or :mod:`atustc.methods.uniat`, which registers the methods) does not
import torch; the modules with layers do.
"""
