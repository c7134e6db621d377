"""The judge's own subsystem: the evidence corpus, the composer of judged cases, verdict files, judge
training and judge evaluation.

Layers: ``tasks`` -> ``g2r_env`` -> ``g2r_judge``. ``g2r_env`` keeps ``Judge`` (the input format a
judge is trained on), the packed forward pass, and the shipped judges; the agents never need this
package.

- ``corpus``: evidence passages per criterion, read from ``<task set>/evidence/*.jsonl``.
- ``cases``: ``JudgedCase``, a (task, response, criterion) with a known verdict.
- ``compose``: the seeded composer that turns a corpus into judged cases.
- ``verdicts``: labelled verdict files (ours, HealthBench meta-evaluation), read and written.
- ``predict``: p_true of judged cases, the cases of one response packed into one sequence.
- ``training``: ``g2r judge train``, supervised fine-tuning on the verdict.
- ``evaluation``: ``g2r judge eval``, verdict quality and where credit lands.
"""
