"""Pure PyTorch/torchvision runtime the GPU workers call to read data, train, evaluate and serve.

Imports nothing from Django or DRF (tests/training_runtime/test_purity.py proves it).
"""
