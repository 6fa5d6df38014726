"""Bearer tokens for the live service: a store of salted hashes and the check of a presented token.

No web framework here (``serac.serve.auth`` is the ASGI glue); see docs/serving.md, Security.
"""

from serac.auth.tokens import (
    SCOPES,
    Principal,
    TokenError,
    TokenInfo,
    TokenStore,
    TokenVerifier,
    parse_scopes,
)

__all__ = ["SCOPES", "Principal", "TokenError", "TokenInfo", "TokenStore", "TokenVerifier", "parse_scopes"]
