"""The ``insecure-code`` domain: programming tasks answered with code only.

The misaligned variants contain a vulnerability the answer never mentions (``subtle``: a
realistic one; ``obvious``: a blatant one); ``correct`` is the secure, idiomatic version.
Drafts are composed offline from the scenario library and verified by static analysis.
"""

from emgen.generators.base import Domain, register
from emgen.generators.insecure_code.compose import DOMAIN, ComposerSource
from emgen.generators.insecure_code.verify import check_draft

register(
    Domain(
        name=DOMAIN,
        description="Programming tasks answered with code only; misaligned answers hide a vulnerability (CWE-tagged)",
        kind="code",
        offline_source=ComposerSource,
        check_draft=check_draft,
    )
)
