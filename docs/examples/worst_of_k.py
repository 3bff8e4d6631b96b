"""A spec-local method: `worst_of_k`, the scorer's lowest-ranked of K samples per prompt (docs/plugins.md)."""

from pydantic import Field

from ganrm_bench.harness.plugins.base import Method, PluginParams
from ganrm_bench.harness.plugins.registry import METHODS


class WorstParams(PluginParams):
    k: int = Field(4, ge=1)


@METHODS.register("worst_of_k")
class WorstOfK(Method):
    """Per prompt, the scorer's argmin among the first K samples of the shared pool."""

    uses = ("generator", "prompts", "scorer")  # spec entries the row must name (validate checks them)
    Params = WorstParams

    def build(self, b, entry):  # describe the artifacts; caching, resume and `plan` come free
        pool = b.pool(entry.generator, entry.prompts, k=self.params.k)
        return b.select(pool, b.scores(entry.scorer, pool), "argmin")
