"""What a statement may reach beyond the store: ClickHouse's source grants, decided on the SQL text.

A ClickHouse server admits ``file()``, ``url()``, ``s3()``, ``remote()``, ``executable()`` and the
like only to users holding the matching source grant (``FILE``, ``URL``, ``S3``, ...), and reads
files only under ``user_files_path``. chdb runs as clickhouse-local, which checks neither: any
statement could read or write any path the process can, reach any host, or run programs. So the
warehouse decides before the engine runs a statement, on the text the engine's own parser gave
back (``formatQuery``: comments gone, strings and identifiers in one canonical quoting), and on the
raw ``VALUES`` data (expressions there are evaluated, and the parser does not see them):

- a call ``name(`` of a table function, table engine, database engine or dictionary source/layout
  that is not on the allow-list below is refused (``ACCESS_DENIED``, 497). The lists come from the
  engine's own catalogue (``system.table_functions`` ...), so a source a newer engine adds is
  refused until someone allows it here. ``TICKPIPE_WAREHOUSE__ALLOW_NETWORK_SOURCES`` admits the
  ones that reach other hosts (url, s3, remote, mysql, ...); those that run programs or code never;
- the file sources (``file``, ``filesystem``, ``sqlite``, the ``*Local`` lake formats, the
  ``File`` engine) work only when ``TICKPIPE_WAREHOUSE__USER_FILES_DIR`` names a directory, and
  only on literal paths inside it (ClickHouse's ``user_files_path``);
- a table named by a path (clickhouse-local's file-backed ``default`` database answers
  ``SELECT * FROM `/etc/passwd```) follows the same rule; relative names resolve in that directory
  (or an empty one), because the warehouse runs there;
- ``INTO OUTFILE`` / ``FROM INFILE`` (client-side features of clickhouse-client), ``SYSTEM
  SHUTDOWN`` / ``SYSTEM KILL`` (they would end the warehouse process and its process group) and a
  ``dialect`` other than ``clickhouse`` (the check reads ClickHouse SQL) are refused.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from warehouse.protocol import ProtocolError, Token, tokens, unquote

ACCESS_DENIED = 497

# Sources that reach nothing outside the store (lower-cased names from the engine's catalogue).
SAFE_SOURCES = frozenset(
    {
        # table functions
        "values", "sqlstandardvalues", "numbers", "numbers_mt", "zeros", "zeros_mt", "generaterandom",
        "generateseries", "generate_series", "primes", "null", "view", "viewexplain", "viewifpermitted",
        "merge", "input", "format", "dictionary", "loop", "fuzzjson", "fuzzquery", "mergetreeindex",
        "mergetreeprojection", "mergetreetextindex", "mergetreeanalyzeindexes", "mergetreeanalyzeindexesuuid",
        "mergetreecodecblockcounts", "timeseriesdata", "timeseriesmetricfamilies", "timeseriesmetrics",
        "timeseriessamples", "timeseriesselector", "timeseriestags",
        # table engines (the Replicated* ones need Keeper, which a local store has not: they fail)
        "mergetree", "replacingmergetree", "summingmergetree", "aggregatingmergetree", "collapsingmergetree",
        "versionedcollapsingmergetree", "graphitemergetree", "coalescingmergetree", "replicatedmergetree",
        "replicatedreplacingmergetree", "replicatedsummingmergetree", "replicatedaggregatingmergetree",
        "replicatedcollapsingmergetree", "replicatedversionedcollapsingmergetree", "replicatedgraphitemergetree",
        "replicatedcoalescingmergetree", "log", "stripelog", "tinylog", "memory", "set", "join", "buffer",
        "materializedview", "embeddedrocksdb", "keepermap", "alias", "timeseries",
        # database engines
        "atomic", "ordinary", "lazy", "replicated",
    }
)
# Sources that read or write local files: allowed with a user files directory, on paths inside it.
FILE_SOURCES = frozenset({"file", "filesystem", "sqlite", "icebergLocal".lower(), "deltaLakeLocal".lower(),
                          "paimonLocal".lower()})
# Sources that run programs or code in the warehouse process: refused whatever the settings say.
CODE_SOURCES = frozenset({"executable", "executablepool", "executable_pool", "python", "eval", "library",
                          "catboostevaluate", "disk"})
# Not in the engine's catalogue but reaching out all the same: dictionary sources and layouts that
# name hosts, programs, libraries or paths; dynamic disks (``disk(type = local, path = ...)``); model files.
EXTRA_DENIED = frozenset(
    {
        "http", "https", "executable", "executable_pool", "library", "cassandra", "mongodb", "mysql",
        "postgresql", "redis", "odbc", "yamlregexptree", "regexp_tree", "ssd_cache", "complex_key_ssd_cache",
        "disk", "catboostevaluate", "python", "eval",
    }
)
_PATH_WORDS = frozenset({b"FROM", b"JOIN", b"TABLE", b"DESCRIBE", b"DESC"})


@dataclass(frozen=True)
class SourcePolicy:
    """The sources a statement may name: ``denied`` (lower-case names) and the user files directory."""

    denied: frozenset[str]
    files_dir: Path | None = None

    @classmethod
    def from_catalogue(cls, names: Iterable[str], files_dir: Path | None, network: bool = False) -> SourcePolicy:
        """Deny every catalogue source not on the allow-list; file sources count as allowed-with-a-path.

        With ``network`` the sources that reach other hosts (url, s3, remote, mysql, ...) are allowed;
        the ones that run programs or code (:data:`CODE_SOURCES`) never are.
        """
        known = {name.lower() for name in names} | EXTRA_DENIED
        denied = known - SAFE_SOURCES - FILE_SOURCES
        if network:
            denied &= CODE_SOURCES
        return cls(frozenset(denied), files_dir.resolve() if files_dir else None)


def _denied(what: str) -> ProtocolError:
    return ProtocolError(
        ACCESS_DENIED, "ACCESS_DENIED", f"Not enough privileges: {what} is not allowed on this warehouse"
    )


def check_settings(settings: Mapping[str, str]) -> None:
    """Refuse request settings that would make the engine read something the check did not."""
    if settings.get("dialect", "clickhouse").strip("'\" ").lower() != "clickhouse":
        raise _denied(f"dialect {settings['dialect']!r} (only clickhouse SQL is checked)")


# What rows of plain literals never hold: a name (or quote) right before "(", a comment, a quoted
# identifier, a heredoc, or a keyword the checks look at; rows without any skip the (slow) lexer
_MAY_REACH = re.compile(rb"[A-Za-z0-9_`\"$]\s*\(|/\*|--|#|`|\"|\$|"
                        rb"(?i:\b(?:from|join|table|desc|describe|into|system|set|infile|outfile)\b)")


def check_values(data: str, policy: SourcePolicy) -> None:
    """:func:`check_statement` for ``VALUES`` rows, which are evaluated but not parsed beforehand."""
    raw = data.encode()
    if _MAY_REACH.search(raw) is not None:
        check_statement(raw, policy)


def check_statement(sql: str | bytes, policy: SourcePolicy) -> None:
    """Raise ``ACCESS_DENIED`` if ``sql`` names a source, path or command the policy does not allow."""
    buf = sql.encode() if isinstance(sql, str) else sql
    toks = tokens(buf, stop_after_format=False, stop_at_semicolon=False)
    words = [t.word for t in toks]
    for i, tok in enumerate(toks):
        nxt = toks[i + 1] if i + 1 < len(toks) else None
        prev = words[i - 1] if i else b""
        if nxt is not None and nxt.text(buf) == b"(":
            name = _name_of(buf, tok)
            if name:
                _check_call(buf, toks, i, name.lower(), policy, after_engine=_after_engine(words, i))
        if tok.word in (b"OUTFILE", b"INFILE") and prev in (b"INTO", b"FROM"):
            raise _denied(f"{prev.decode()} {tok.word.decode()} (a clickhouse-client feature)")
        if prev == b"SYSTEM" and tok.word in (b"SHUTDOWN", b"KILL"):
            raise _denied(f"SYSTEM {tok.word.decode()}")
        if tok.word == b"DIALECT" and words and words[0] == b"SET":
            raise _denied("changing the SQL dialect")
        if _names_a_table(tok, prev, nxt, buf):
            _check_path_name(unquote(buf, tok), policy)


def _names_a_table(tok: Token, prev: bytes, nxt: Token | None, buf: bytes) -> bool:
    # a quoted identifier that is not an alias nor a function name, or a string where a table goes
    # ("FROM '/x'", "db.'x'" after the lexer's "DB." word)
    if tok.quote in (b"`", b'"'):
        return prev != b"AS" and (nxt is None or nxt.text(buf) != b"(")
    return tok.quote in (b"'", b"$") and (prev in _PATH_WORDS or prev.endswith(b"."))


def _name_of(buf: bytes, tok: Token) -> str:
    if tok.word:
        return tok.word.decode(errors="replace")
    if tok.quote in (b"`", b'"'):
        return unquote(buf, tok)
    return ""


def _after_engine(words: list[bytes], i: int) -> bool:
    return (i >= 1 and words[i - 1] == b"ENGINE") or (i >= 2 and words[i - 2] == b"ENGINE")


def _arguments(buf: bytes, toks: list[Token], open_idx: int) -> list[list[Token]]:
    args: list[list[Token]] = [[]]
    depth = 0
    for tok in toks[open_idx:]:
        text = tok.text(buf)
        if text == b"(":
            depth += 1
            if depth == 1:
                continue
        elif text == b")":
            depth -= 1
            if depth == 0:
                break
        if depth == 1 and text == b",":
            args.append([])
            continue
        args[-1].append(tok)
    return [arg for arg in args if arg]


def _check_call(buf: bytes, toks: list[Token], i: int, name: str, policy: SourcePolicy, after_engine: bool) -> None:
    if name == "clickhouse":
        # a dictionary source: the local server is fine, another host is the remote() grant
        args = _arguments(buf, toks, i + 1)
        if any(tok.word in (b"HOST", b"PORT") for arg in args for tok in arg):
            raise _denied("a CLICKHOUSE dictionary source on another host")
        return
    if name in FILE_SOURCES:
        _check_file_call(buf, _arguments(buf, toks, i + 1), name, policy, after_engine)
        return
    if name in policy.denied:
        what = "runs programs or code" if name in CODE_SOURCES else "reaches other hosts: TICKPIPE_WAREHOUSE__ALLOW_NETWORK_SOURCES"
        raise _denied(f"{name}() ({what})")


def _check_file_call(buf: bytes, args: list[list[Token]], name: str, policy: SourcePolicy, after_engine: bool) -> None:
    if policy.files_dir is None:
        raise _denied(f"{name}() (file sources need TICKPIPE_WAREHOUSE__USER_FILES_DIR)")
    # the File engine's first argument is the format and its path is optional; a function's path comes first
    first = 1 if after_engine and name == "file" else 0
    if not after_engine and (not args or len(args[0]) != 1 or args[0][0].quote != b"'"):
        raise _denied(f"{name}() with a path that is not a string literal")
    for arg in args[first:]:
        if len(arg) != 1 or arg[0].quote not in (b"'", b"$"):
            raise _denied(f"{name}() with an argument that is not a string literal")
        _check_path(unquote(buf, arg[0]), policy)


def _check_path_name(name: str, policy: SourcePolicy) -> None:
    # table names of clickhouse-local's file-backed default database; plain names resolve in the cwd
    if "/" in name or "\\" in name or name.startswith("~"):
        if policy.files_dir is None:
            raise _denied(f"the path {name!r} as a table (file access needs TICKPIPE_WAREHOUSE__USER_FILES_DIR)")
        _check_path(name, policy)


_GLOB = re.compile(r"[*?{\[]")


def _check_path(path: str, policy: SourcePolicy) -> None:
    root = policy.files_dir
    assert root is not None
    if ".." in path or path.startswith("~") or "\x00" in path:
        raise _denied(f"the path {path!r} (no '..' or '~' in paths)")
    fixed = _GLOB.split(path, maxsplit=1)[0]
    resolved = os.path.realpath(os.path.join(root, fixed))
    if resolved != str(root) and not resolved.startswith(str(root) + os.sep):
        raise _denied(f"the path {path!r} outside the user files directory {root}")
