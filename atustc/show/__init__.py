"""Pictures of results: rank lists (:mod:`atustc.show.ranks`) and CMC curves (:mod:`atustc.show.cmc`)."""
