"""The matching engine: blocking keys, candidate pairs, scoring with reasons, and the learned model.

The pipeline (`xref.services`, `xref.tasks`) calls only these functions; everything about how records are
compared lives under this package.

- `index(entity_ids)`: (re)write the `BlockKey` rows of these entities (none for an archived one).
- `analyze()`: after indexing many records, refresh the index's planner statistics.
- `candidates(entity_ids)`: the candidate pairs (left < right) of these entities, by index lookups on their keys,
  frequency caps applied (XREF_BLOCK_MAX_SIZE, XREF_BLOCK_MAX_SHARE); across agencies.
- `full_candidates(agency_id, part, parts, case_id=None, common=None)`: one part of a full pass's candidate pairs
  (those with a record of the agency, or of the case's parties); every pair in exactly one part.
  `common_keys(agency_id)`: the keys too common to be blocks, found once for all of a pass's parts.
- `score_pairs(pairs)`: a `Scored` (score 0-1, features, explanation) for each pair, loading what it needs.
- `pinned(ids)`: a block within which these entities' profiles, relations and key counts are loaded once (a run's
  part scores many batches among the same records); `profiles(ids)`: the live ones' profiles.
- `train(agency_id)`: estimate the agency's model (EM on its candidate pairs, refined by its decisions).
- `forget(agency_id)`: drop this process's cached model and block cap of the agency (after a training elsewhere).

Modules: `records` (a record folded once), `keys` (blocking), `features` (comparisons by level), `relations`
(shared directors, owners, counterparties), `model` (Fellegi-Sunter, EM), `explain` (the sentence), `score`.
"""

from .keys import analyze, candidates, common_keys, full_candidates, index
from .score import Scored, forget, pair_order, pinned, profiles, score_pairs, train

__all__ = ["Scored", "analyze", "candidates", "common_keys", "forget", "full_candidates", "index", "pair_order",
           "pinned", "profiles", "score_pairs", "train"]
