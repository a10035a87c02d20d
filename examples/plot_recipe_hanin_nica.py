"""
A recipe: Hanin & Nica's depth-to-width law
===========================================

:func:`compare.recipes.run_recipe` tests the claims of a seed paper and writes a dataset, figures
and a report with a verdict per claim. At ``scale="tiny"`` it runs in seconds; ``"small"`` and
``"paper"`` are the sizes that can decide the claims.
"""

import tempfile

import matplotlib.pyplot as plt

import compare

out = tempfile.mkdtemp()
result = compare.recipes.run_recipe("hanin-nica", scale="tiny", out=out)
for claim in result.claims:
    verdict = {True: "held", False: "not held", None: "not testable"}[claim.held]
    print(f"{verdict:>12}: {claim.statement}")

fig, ax = plt.subplots(figsize=(7, 5))
ax.imshow(plt.imread(result.figures[0]))
ax.set_axis_off()
fig.tight_layout()
