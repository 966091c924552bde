"""Exercises of 04_combined: pipeline order, a size estimate, reading the two byte counts."""

from __future__ import annotations

import numpy as np

from course_lib.combined import Stage, array_bits, validate_pipeline
from course_lib.exercises.core import Incorrect, Problem, expect_choice


def example_layer() -> np.ndarray:
    """A 300x100 int8 weight matrix, 90 % zeros, 16 distinct non-zero values (seeded)."""
    rng = np.random.default_rng(0)
    values = rng.choice(np.array([v for v in range(-8, 9) if v != 0], np.int8)[:16], 30_000)
    values[rng.random(30_000) < 0.9] = 0
    return values.reshape(100, 300)


class OrderStages(Problem):
    """Order the stages prune, cluster and pcqat into a pipeline that works."""

    variables = ("pipeline_order",)
    hint_text = (
        "Quantization-aware training always comes last; clustering a pruned layer can keep its "
        "zeros, but pruning a clustered layer destroys the clusters."
    )
    solution_code = 'pipeline_order = ["prune", "cluster", "pcqat"]'

    def _check(self, pipeline_order) -> str:
        if sorted(pipeline_order) != ["cluster", "pcqat", "prune"]:
            raise Incorrect("use exactly the three stages 'prune', 'cluster' and 'pcqat'")
        try:
            validate_pipeline([Stage(name) for name in pipeline_order])
        except ValueError as err:
            raise Incorrect(str(err)) from err
        return "that is Deep Compression's order: prune, share weights, then quantize."


class EstimateLayerSize(Problem):
    """Estimate the Deep Compression size of a 300x100 layer, 90 % sparse, 16 clusters."""

    variables = ("estimated_bytes",)
    hint_text = (
        "90 % of 30,000 weights are zero, so 3,000 are stored. Each needs a cluster index "
        "(16 clusters: how many bits?) and a 5-bit relative position."
    )
    solution_code = """
stored = 0.1 * 300 * 100             # 3,000 non-zero weights
bits_each = 4 + 5                    # 4-bit cluster index + 5-bit relative index
estimated_bytes = stored * bits_each / 8   # 3,375 bytes, vs 120,000 in float32
"""

    def _check(self, estimated_bytes) -> str:
        if isinstance(estimated_bytes, bool) or not isinstance(estimated_bytes, (int, float)):
            raise Incorrect("`estimated_bytes` should be a number of bytes")
        measured = array_bits(example_layer(), 5) / 8
        if estimated_bytes > 10_000:
            raise Incorrect(
                f"{estimated_bytes:,.0f} bytes is too much: count only the 3,000 non-zeros, "
                "and bits, not bytes, per index"
            )
        if abs(estimated_bytes - measured) > 0.2 * measured:
            raise Incorrect(
                f"{estimated_bytes:,.0f} bytes is more than 20 % away from the measured size"
            )
        return (
            f"the measured Huffman-coded size of such a layer is {measured:,.0f} bytes "
            "(course_lib.combined.array_bits): Huffman coding of the indices and the filler "
            "zeros for long gaps roughly cancel out."
        )


class WhyFileIsBigger(Problem):
    """Why is the real gzip-compressed .tflite larger than the Deep Compression count?"""

    variables = ("answer",)
    hint_text = "What does the file hold besides weights, and how does gzip encode a zero run?"
    solution_code = 'answer = "a"'
    choices = {
        "a": "",
        "b": "No: the int8 file stores the zeros as 1-byte int8 zeros, not as float32.",
        "c": "No: gzip compresses int8 values well; look at the ratios in the table.",
    }

    def _check(self, answer) -> str:
        expect_choice("answer", answer, self.choices, "a")
        return (
            "gzip describes each run of zeros with an LZ77 match of 15-20 bits, where Deep "
            "Compression uses a 5-bit index; and the file carries the graph, tensor names "
            "and per-channel scales that the paper does not count."
        )


q1 = OrderStages()
q2 = EstimateLayerSize()
q3 = WhyFileIsBigger()
