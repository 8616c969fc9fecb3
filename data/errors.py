"""Error categories and the one mapping from library exceptions to what a user is told.

Every failure the app shows is an `AppError`: a category (counted in /metrics), a short
message fit for the page, and details that only go to the log.
"""
from __future__ import annotations

from enum import Enum

import psycopg
import sqlalchemy.exc as sa_exc
from psycopg import errors as pg_errors


class Category(str, Enum):
    CONFIGURATION = "configuration"
    CONNECTION = "connection"
    AUTHENTICATION = "authentication"
    TIMEOUT = "timeout"
    VALIDATION = "validation"
    CONFLICT = "conflict"
    PERMISSION = "permission"
    UPSTREAM = "upstream"


class AppError(Exception):
    """A failure with a category and a message that can be shown to a user as is."""

    category = Category.UPSTREAM

    def __init__(self, message: str, *, category: Category | None = None, detail: str = ""):
        super().__init__(message)
        self.message = message
        self.detail = detail
        if category is not None:
            self.category = category

    def __str__(self) -> str:
        return self.message


class ValidationError(AppError):
    category = Category.VALIDATION


class ConflictError(AppError):
    category = Category.CONFLICT


class PermissionDenied(AppError):
    category = Category.PERMISSION


_AUTH_MARKERS = ("authentication failed", "no password supplied", "password is required")
_CONNECTION_MARKERS = ("connection refused", "could not connect", "server closed the connection",
                       "terminating connection", "connection is closed", "no such file or directory",
                       "connection timeout", "timeout expired", "could not translate host name",
                       "the database system is starting up", "the database system is shutting down",
                       "consuming input failed", "connection to server")


def _from_postgres(exc: BaseException) -> AppError | None:
    if isinstance(exc, pg_errors.QueryCanceled):
        return AppError("The database took too long to answer; try a narrower request.",
                        category=Category.TIMEOUT, detail=str(exc))
    if isinstance(exc, (pg_errors.InsufficientPrivilege, pg_errors.ReadOnlySqlTransaction)):
        return PermissionDenied("The app's database role may not do this.", detail=str(exc))
    if isinstance(exc, (pg_errors.UndefinedTable, pg_errors.InvalidSchemaName, pg_errors.UndefinedColumn)):
        return AppError(f"A table or column the app expects is missing: {exc.diag.message_primary}.",
                        category=Category.CONFIGURATION, detail=str(exc))
    if isinstance(exc, (pg_errors.SerializationFailure, pg_errors.DeadlockDetected,
                        pg_errors.LockNotAvailable)):
        return ConflictError("Someone else changed this at the same moment; reload and try again.",
                             detail=str(exc))
    if _sqlstate(exc)[:2] in ("53", "54"):          # insufficient resources, program limit exceeded
        return AppError("The database ran out of memory or temporary space for this request; ask for less at once.",
                        category=Category.UPSTREAM, detail=str(exc))
    if isinstance(exc, psycopg.IntegrityError):
        return ValidationError("The database refused the change because it breaks a rule: "
                               f"{exc.diag.message_primary}.", detail=str(exc))
    if isinstance(exc, psycopg.OperationalError):
        text = str(exc).lower()
        if any(m in text for m in _AUTH_MARKERS):
            return AppError("The database refused the app's credentials.",
                            category=Category.AUTHENTICATION, detail=str(exc))
        if any(m in text for m in _CONNECTION_MARKERS):
            return AppError("The database cannot be reached right now; retrying shortly usually helps.",
                            category=Category.CONNECTION, detail=str(exc))
        return AppError("The database is unavailable.", category=Category.CONNECTION, detail=str(exc))
    return None


def _from_databricks(exc: BaseException) -> AppError | None:
    try:
        from databricks.sdk import errors as dbx
    except ImportError:  # pragma: no cover - the SDK is a dependency
        return None
    if isinstance(exc, dbx.Unauthenticated):
        return AppError("Databricks refused the app's credentials.", category=Category.AUTHENTICATION,
                        detail=str(exc))
    if isinstance(exc, dbx.PermissionDenied):
        return PermissionDenied("Databricks says the app may not do this.", detail=str(exc))
    if isinstance(exc, dbx.NotFound):
        return AppError("A Databricks resource the app is configured to use does not exist.",
                        category=Category.CONFIGURATION, detail=str(exc))
    if isinstance(exc, dbx.DatabricksError):
        return AppError("A Databricks service failed to answer.", category=Category.UPSTREAM, detail=str(exc))
    return None


def classify(exc: BaseException) -> AppError:
    """Map any exception to an AppError (already-classified errors pass through)."""
    if isinstance(exc, AppError):
        return exc
    # The driver's exception, without SQLAlchemy's echo of the statement and its parameters.
    original = exc.orig if isinstance(exc, sa_exc.DBAPIError) and exc.orig is not None else exc
    if isinstance(exc, sa_exc.TimeoutError):
        return AppError("All database connections are busy; try again in a moment.",
                        category=Category.TIMEOUT, detail=str(exc))
    for mapper in (_from_postgres, _from_databricks):
        mapped = mapper(original)
        if mapped is not None:
            return mapped
    detail = f"{type(original).__name__}: {original}"
    if isinstance(original, TimeoutError):
        return AppError("The operation took too long.", category=Category.TIMEOUT, detail=detail)
    if isinstance(original, (ConnectionError, OSError)):
        return AppError("A service the app depends on cannot be reached.", category=Category.CONNECTION,
                        detail=detail)
    return AppError("Something went wrong; the details are in the server log.", category=Category.UPSTREAM,
                    detail=detail)


def is_transient_connection_error(exc: BaseException) -> bool:
    """A failure that a fresh connection may fix (dropped socket, restarted server, expired login)."""
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    category = classify(exc).category
    return category in (Category.CONNECTION, Category.AUTHENTICATION) and isinstance(
        exc, (sa_exc.OperationalError, sa_exc.InterfaceError, psycopg.OperationalError))


def classify_user_query(exc: BaseException) -> AppError:
    """A query a person (or a model) wrote failed: their mistake in PostgreSQL's own words, a limit
    they reached, or, when the fault is not in the query, what `classify` says."""
    original = exc.orig if isinstance(exc, sa_exc.DBAPIError) and exc.orig is not None else exc
    primary = getattr(getattr(original, "diag", None), "message_primary", None) or str(original).strip()
    state = _sqlstate(original)
    if state == "42501":                             # insufficient privilege
        return PermissionDenied(f"The assistant may not read that: {primary}.", detail=str(original))
    if state[:2] in ("53", "54"):                    # out of memory or disk, a limit of the server's
        return ValidationError("The query needs more memory or temporary space than the assistant allows; ask for "
                               "fewer rows, columns or groups.", detail=str(original))
    if state[:2] in ("42", "22", "21", "2F", "39"):  # the query's own mistake: syntax, names, data, cardinality
        return ValidationError(f"The query failed: {primary}.", detail=str(original))
    return classify(exc)


def _sqlstate(exc: BaseException) -> str:
    return getattr(exc, "sqlstate", None) or ""
