"""SageMaker entry point: runs algorithm/train.py (packed by detectctl)."""
import os
import runpy
import sys

# Workers that algorithm/train.py launches itself must import `algorithm` from here too.
here = os.path.dirname(os.path.abspath(__file__))
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")]))
sys.path.insert(0, here)
runpy.run_module("algorithm.train", run_name="__main__", alter_sys=True)
