"""Property-based tests of every reader: whatever the bytes, only the project's own errors, and a
bounded peak memory per example.

The default run draws a few examples per reader (well under a minute in all); a longer run::

    DETECTCTL_FUZZ_EXAMPLES=2000 pytest tests/fuzz

Inputs that ever broke a reader are kept in ``tests/fuzz/corpus/<reader>/`` and replayed on
every run (``test_corpus.py``); add the bytes of a new failure there.
"""
