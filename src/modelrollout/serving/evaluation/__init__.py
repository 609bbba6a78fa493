"""The evaluation runner behind ``modelrollout evaluate``.

Reads a labelled dataset, scores it through the TensorFlow Serving API on the
candidate and (optionally) the baseline, computes scikit-learn metrics on the
same rows, compares them with paired statistics, applies the shared gates
(:mod:`modelrollout.core.gates`) and writes the versioned result
(docs/evaluation-output.md).
"""
