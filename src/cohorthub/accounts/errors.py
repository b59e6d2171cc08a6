"""Account errors.

InvalidAccount(InvalidInput)        400: an e-mail, password, role or language that breaks a rule
AccountConflict(Conflict)           409: an e-mail already taken
InvalidCredentials(Unauthorized)    401: wrong e-mail or password
NotSignedIn(Unauthorized)           401: no session, or an expired one
RoleForbids(Forbidden)              403: the account's role does not allow the action
AccountNotFound(NotFound)           404
SignInRateLimited(RateLimited)      429: too many failed sign-ins
"""

from __future__ import annotations

from cohorthub.errors import Conflict, Forbidden, InvalidInput, NotFound, RateLimited, Unauthorized


class InvalidAccount(InvalidInput):
    """An e-mail, password, role or language breaks a rule."""


class AccountConflict(Conflict):
    """An account with that e-mail exists."""


class InvalidCredentials(Unauthorized):
    """The e-mail or password is wrong (the message never says which)."""


class NotSignedIn(Unauthorized):
    """No valid session."""


class RoleForbids(Forbidden):
    """The account's role does not allow the action."""


class AccountNotFound(NotFound):
    """No account has that id."""


class SignInRateLimited(RateLimited):
    """Too many failed sign-ins for that e-mail or client."""
