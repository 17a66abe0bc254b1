"""The data plane of detectctl: the SSD detector that SageMaker training jobs and endpoints run.

Everything under ``algorithm/`` runs inside SageMaker's PyTorch framework images, the oldest of
which is ``pytorch-training:1.12.1-gpu-py38``. It therefore imports only the standard library,
numpy, Pillow, torch and torchvision, keeps to Python 3.8 syntax, and gates newer torch features
at run time.
"""
