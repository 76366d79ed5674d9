"""Load a deployment from YAML with errors a person can act on.

Only ``yaml.safe_load``-equivalent construction is used. ``${VAR}`` in a string value is
replaced by the environment variable (``$${`` writes a literal ``${``); a missing
variable is an error. Every problem is reported as ``file:line: field.path: what is
wrong``, with "did you mean" for misspelled keys and names.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from config._references import ReferenceProblem, did_you_mean
from config._schema_walk import field_names_at
from config.errors import ConfigError
from config.models import AgentConfig, Deployment

YamlPath = tuple[str | int, ...]

_ENV = re.compile(r"\$(\$?)\{([^}]*)\}")
_SECRET_WORDS = ("passphrase", "password", "mnemonic", "seed", "private_key", "secret")


@dataclass(frozen=True)
class ConfigProblem:
    """One problem in a deployment file."""

    file: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class DeploymentFileError(ConfigError):
    """A deployment file is invalid; ``problems`` lists each problem with its line."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        super().__init__("\n".join(str(problem) for problem in problems))
        self.problems = problems


def load_deployment(file: str | Path) -> Deployment:
    """Parse, interpolate and validate `file`; relative paths resolve beside it."""
    path = Path(file)
    text = _read(path)
    data, lines = _parse(path, text)
    data = _interpolate(path, data, lines, ())
    try:
        deployment = Deployment.model_validate(data)
    except ValidationError as exc:
        raise DeploymentFileError(_problems(path, exc, data, lines)) from None
    return _resolve_paths(deployment, path.resolve().parent)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise _error(path, None, "", "file not found; check the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise _error(path, None, "", f"cannot read the file: {exc}") from None


def _error(path: Path, line: int | None, field: str, message: str) -> DeploymentFileError:
    return DeploymentFileError([ConfigProblem(str(path), line, field, message)])


def _parse(path: Path, text: str) -> tuple[Any, dict[YamlPath, int]]:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        raise _yaml_syntax_error(path, exc) from None
    except yaml.YAMLError as exc:
        raise _error(path, None, "", f"not valid YAML: {exc}") from None
    if node is None:
        raise _error(path, 1, "", "the file is empty; start from `python main.py init DIR`")
    lines: dict[YamlPath, int] = {}
    _index_lines(path, node, (), lines)
    data = yaml.SafeLoader(text).construct_document(node)
    if not isinstance(data, dict):
        raise _error(path, 1, "", "the top level must be a mapping (name:, chains:, ...)")
    return data, lines


def _yaml_syntax_error(path: Path, exc: yaml.MarkedYAMLError) -> DeploymentFileError:
    # The context mark is where the broken construct began (an unclosed `[`); the
    # problem mark is where the parser noticed. Point at the start, mention both.
    problem = exc.problem or "syntax error"
    line = exc.problem_mark.line + 1 if exc.problem_mark else None
    if exc.context_mark is not None and line is not None:
        start = exc.context_mark.line + 1
        problem += f" at line {line}, {exc.context or 'in the construct'} started at line {start}"
        line = start
    if "\\t" in problem or "tab" in problem:
        problem += "; YAML does not allow tabs for indentation: indent with spaces"
    return _error(path, line, "", f"YAML syntax error: {problem}")


def _index_lines(path: Path, node: yaml.Node, at: YamlPath, lines: dict[YamlPath, int]) -> None:
    """Record the line of every key and list item, and reject duplicate keys."""
    lines[at] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in seen:
                line = key_node.start_mark.line + 1
                raise _error(path, line, _dotted((*at, key)), f"duplicate key {key!r}")
            seen.add(key)
            _index_lines(path, value_node, (*at, key), lines)
            lines[(*at, key)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _index_lines(path, item, (*at, index), lines)


def _interpolate(path: Path, value: Any, lines: dict[YamlPath, int], at: YamlPath) -> Any:
    if isinstance(value, dict):
        return {k: _interpolate(path, v, lines, (*at, k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(path, v, lines, (*at, i)) for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value

    def substitute(match: re.Match[str]) -> str:
        if match.group(1):
            return "${" + match.group(2) + "}"
        name = match.group(2)
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise _error(path, lines.get(at), _dotted(at), f"bad variable name ${{{name}}}")
        if name not in os.environ:
            raise _error(
                path,
                lines.get(at),
                _dotted(at),
                f"environment variable {name} is not set; export it or edit the value",
            )
        return os.environ[name]

    return _ENV.sub(substitute, value)


def _problems(
    path: Path, exc: ValidationError, data: Any, lines: dict[YamlPath, int]
) -> list[ConfigProblem]:
    problems = []
    errors = exc.errors()
    misspelled = _misspelled_fields(errors, data)
    for error in errors:
        if error["type"] == "missing" and _field_of(error, data) in misspelled:
            continue  # the misspelled key's "did you mean" already names this field
        cause = (error.get("ctx") or {}).get("error")
        if isinstance(cause, ReferenceProblem):
            at, message = cause.path, cause.message
        else:
            at, message = _data_path(data, error["loc"]), _message(error)
        problems.append(ConfigProblem(str(path), _line(lines, at), _dotted(at), message))
    return problems


def _field_of(error: Any, data: Any) -> tuple[YamlPath, str]:
    return _data_path(data, error["loc"][:-1]), str(error["loc"][-1])


def _misspelled_fields(errors: list[Any], data: Any) -> set[tuple[YamlPath, str]]:
    """Fields an unknown key was probably meant to be (from its "did you mean")."""
    fields = set()
    for error in errors:
        match = re.search(r"did you mean '([^']+)'", _message(error))
        if error["type"] == "extra_forbidden" and match:
            fields.add((_field_of(error, data)[0], match.group(1)))
    return fields


def _message(error: Any) -> str:
    kind, loc = error["type"], error["loc"]
    if kind == "extra_forbidden":
        key = str(loc[-1])
        if any(word in key.lower() for word in _SECRET_WORDS):
            return (
                f"unknown key {key!r}: secrets are never read from YAML; give the "
                "passphrase by COVENANT_PASSPHRASE, --passphrase-file or the prompt"
            )
        return f"unknown key {key!r}{did_you_mean(key, field_names_at(loc[:-1]))}"
    if kind == "missing":
        return f"missing required field {str(loc[-1])!r}"
    message = str(error["msg"]).removeprefix("Value error, ")
    if kind.startswith(("string_type", "int_", "bool_", "float_", "literal_", "list_", "dict_")):
        message += f" (got {error['input']!r})"
    return message


def _data_path(data: Any, loc: tuple[str | int, ...]) -> YamlPath:
    """Map a pydantic error location onto the YAML data, dropping union tags.

    Pydantic puts the tag of a tagged union (`evm`, `every`) into the location; the YAML
    has no such level, so a part that does not exist in the data is skipped, except the
    last one (a missing field is named even though it is absent).
    """
    at: list[str | int] = []
    current = data
    for position, part in enumerate(loc):
        child = _child(current, part)
        if child is not _ABSENT:
            current = child
            at.append(part)
        elif position == len(loc) - 1:
            at.append(part)
    return tuple(at)


_ABSENT = object()


def _child(container: Any, part: str | int) -> Any:
    if isinstance(container, dict):
        return container.get(part, _ABSENT)
    if isinstance(container, list) and isinstance(part, int) and 0 <= part < len(container):
        return container[part]
    return _ABSENT


def _line(lines: dict[YamlPath, int], at: YamlPath) -> int | None:
    for end in range(len(at), -1, -1):
        if at[:end] in lines:
            return lines[at[:end]]
    return None


_FIELD_PATH = re.compile(r"^([A-Za-z_]\w*(?:\[\d+\]|\.[A-Za-z_]\w*)*)(?::| \()")


def locate(file: str | Path, problems: list[str]) -> DeploymentFileError:
    """Problems found after loading (each starting with its field path, such as
    ``planners[1].plans[0].actions[0].amount: ...``) as ``file:line: field: message``,
    the line being that of the deepest part of the path the file has."""
    path = Path(file)
    _, lines = _parse(path, _read(path))
    located = []
    for problem in problems:
        match = _FIELD_PATH.match(problem)
        at = _undotted(match.group(1)) if match else ()
        # The problem already starts with its field path: keep its words as they are.
        located.append(ConfigProblem(str(path), _line(lines, at), "", problem))
    return DeploymentFileError(located)


def _undotted(field: str) -> YamlPath:
    parts: list[str | int] = []
    for name, index in re.findall(r"([A-Za-z_]\w*)|\[(\d+)\]", field):
        parts.append(name if name else int(index))
    return tuple(parts)


def _dotted(at: YamlPath) -> str:
    text = ""
    for part in at:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _resolve_agent_paths(agent: AgentConfig, base: Path) -> AgentConfig:
    """The credential and every source's `path` parameter, read beside the file."""
    sources = [
        {name: {**params, "path": str(base / params["path"])}}
        if isinstance(params, dict) and isinstance(params.get("path"), str)
        else {name: params}
        for spec in agent.sources
        for name, params in spec.items()
    ]
    credential = str(base / agent.credential) if agent.credential else None
    return agent.model_copy(update={"credential": credential, "sources": sources})


def _resolve_paths(deployment: Deployment, base: Path) -> Deployment:
    data_dir = base / (deployment.data_dir or f".covenant/{deployment.name}")
    operator = deployment.operator
    keystore = base / operator.keystore if operator.keystore else data_dir / "keystore"
    agents = [_resolve_agent_paths(agent, base) for agent in deployment.agents]
    store_url = deployment.store.url or f"sqlite:///{data_dir / 'state.db'}"
    return deployment.model_copy(
        update={
            "data_dir": str(data_dir.resolve()),
            "operator": operator.model_copy(update={"keystore": str(keystore.resolve())}),
            "agents": agents,
            "store": deployment.store.model_copy(update={"url": store_url}),
        }
    )
