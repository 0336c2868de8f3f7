"""The benchmark harness (:mod:`atustc.bench.harness`) and the leaderboard (:mod:`atustc.bench.leaderboard`).

Importing this package is cheap (no torch): the harness imports the engine when it runs.
"""
