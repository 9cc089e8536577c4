"""Settings from a configuration file and from the environment, under the command line.

A setting is a command's long option in snake_case (`--split-size`: `split_size`). The file (YAML,
or JSON) sets it at its top level, for every command that has the option, or in a section per
command (`run:`, `coordinator:`, ...), which wins over the top level. The environment sets it as
MAPREDUCE_<SETTING> (`MAPREDUCE_WORKERS=4`). Precedence: command line > environment > file >
built-in default (`defaults.py`), which is click's own order for an option's `envvar` and the
context's `default_map`: this module only finds and checks the file, names every option's
variable, builds the default map, and reports where each value came from. Everything is generic
over the click commands' options, so a new option is a setting without more code.

Mistakes (an unknown key, a wrong type, a bad value, in the file or the environment, or a file
that does not parse) are a ConfigError: one paragraph, exit status 2, before anything runs.
"""

from __future__ import annotations

import difflib
import json
import os
from dataclasses import dataclass, field
from typing import Any, Mapping

import click

from .errors import MapReduceError
from .sizes import size_text

ENV_PREFIX = "MAPREDUCE_"
CONFIG_ENV = "MAPREDUCE_CONFIG"  # the --config option's own variable
LOCAL_FILE = "mapreduce.yaml"  # looked for in the working directory
USER_FILE = os.path.join("mapreduce", "config.yaml")  # ...then under $XDG_CONFIG_HOME


class ConfigError(MapReduceError):
    """A configuration file or a MAPREDUCE_* variable the commands cannot use."""

    exit_code = 2  # a usage error, as click's own


def setting_key(param: click.Parameter) -> str:
    """The setting an option is: its longest long name in snake_case (`--py-files`: py_files)."""
    longs = [opt for opt in param.opts if opt.startswith("--")] or list(param.opts)
    return max(longs, key=len).lstrip("-").replace("-", "_")


def env_name(key: str) -> str:
    return ENV_PREFIX + key.upper()


# Options a file or a variable must not give: --insecure turns the coordinator's keys off, which
# a mapreduce.yaml in whatever directory a command is run from (or an inherited variable) must not
# do behind the user's back. They are given on the command line each time, as Hadoop's
# `-D` overrides are.
COMMAND_LINE_ONLY = {"insecure"}


def is_setting(param: click.Parameter) -> bool:
    """Options a user sets (not --help, --version, --config, nor hidden internal ones), other
    than those given on the command line only."""
    return (
        isinstance(param, click.Option)
        and not param.hidden
        and not param.is_eager
        and setting_key(param) not in COMMAND_LINE_ONLY
    )


def _refuse_command_line_only(path: str, where: str) -> None:
    raise ConfigError(
        f"configuration file '{path}': '{where}' cannot be set in a file or a variable: it turns "
        f"the coordinator's keys off, so give --{where.rsplit('.', 1)[-1]} on the command line "
        f"each time it is meant. Nothing was run."
    )


def sections(group: click.Group) -> dict[str, click.Command]:
    """The commands that have a section: the group's commands with options (not sub-groups)."""
    return {
        name: command
        for name, command in group.commands.items()
        if not isinstance(command, click.Group)
    }


def settings_of(command: click.Command) -> dict[str, click.Parameter]:
    return {setting_key(param): param for param in command.params if is_setting(param)}


def name_environment_variables(group: click.Group) -> None:
    """Give every setting of the group and of its commands its MAPREDUCE_<SETTING> variable
    (click's auto_envvar_prefix would name them MAPREDUCE_RUN_WORKERS and so on)."""
    for command in [group, *sections(group).values()]:
        for key, param in settings_of(command).items():
            if param.envvar is None:
                param.envvar = env_name(key)


def find_file(explicit: str | None, environ: Mapping[str, str] | None = None) -> str | None:
    """The configuration file: --config (or $MAPREDUCE_CONFIG, which click gives as its value),
    else ./mapreduce.yaml, else $XDG_CONFIG_HOME/mapreduce/config.yaml (~/.config by default),
    else none."""
    environ = os.environ if environ is None else environ
    if explicit:
        if not os.path.isfile(explicit):
            raise ConfigError(
                f"configuration file '{explicit}' (from --config or ${CONFIG_ENV}) does not "
                f"exist or is not a file. Nothing was run."
            )
        return os.path.abspath(explicit)
    home = environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    for candidate in (LOCAL_FILE, os.path.join(home, USER_FILE)):
        if os.path.isfile(candidate):
            return os.path.abspath(candidate)
    return None


def read_file(path: str) -> dict:
    """The file's mapping: JSON for a .json file, YAML otherwise; an empty file is {}."""
    try:
        with open(path, encoding="utf-8") as stream:
            text = stream.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read configuration file '{path}': {exc}.") from None
    if path.endswith(".json"):
        try:
            data = json.loads(text) if text.strip() else {}
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"configuration file '{path}', line {exc.lineno}: not valid JSON ({exc.msg}). "
                f"Nothing was run."
            ) from None
    else:
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = f", line {mark.line + 1}" if mark is not None else ""
            problem = getattr(exc, "problem", None) or str(exc)
            raise ConfigError(
                f"configuration file '{path}'{line}: not valid YAML ({problem}). Nothing was run."
            ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"configuration file '{path}' must hold a mapping of settings (key: value), not "
            f"a {type(data).__name__}. Nothing was run."
        )
    return data


@dataclass
class Loaded:
    """A checked configuration: click's default map, and where each of its values came from."""

    path: str | None = None
    default_map: dict = field(default_factory=dict)
    origins: dict = field(default_factory=dict)  # (section or "", param name) -> description


def load(group: click.Group, path: str | None) -> Loaded:
    """Read and check the file at `path` (None: no file) against the group's commands."""
    loaded = Loaded(path)
    if path is None:
        return loaded
    data = read_file(path)
    commands = sections(group)
    top_level = settings_of(group)
    anywhere = {key for command in commands.values() for key in settings_of(command)}
    top_keys = sorted(set(commands) | set(top_level) | anywhere)
    for key, value in data.items():
        key = str(key)
        if key in COMMAND_LINE_ONLY:
            _refuse_command_line_only(path, key)
        if key in commands:
            if value is None:
                continue
            if not isinstance(value, dict):
                raise ConfigError(
                    f"configuration file '{path}': '{key}' is the section of `mapreduce {key}` "
                    f"and holds its settings (key: value), not {value!r}. "
                    f"Nothing was run."
                )
            accepted = settings_of(commands[key])
            for name, item in value.items():
                name = str(name)
                if name in COMMAND_LINE_ONLY:
                    _refuse_command_line_only(path, f"{key}.{name}")
                if name not in accepted:
                    elsewhere = [n for n, c in commands.items() if name in settings_of(c)]
                    raise _unknown(
                        path,
                        f"{key}.{name}",
                        name,
                        accepted,
                        f"under '{key}:'",
                        f" ('{name}' is a setting of {', '.join(elsewhere)}, not of {key})"
                        if elsewhere
                        else "",
                    )
                param = accepted[name]
                section = loaded.default_map.setdefault(key, {})
                section[param.name] = _checked(path, f"{key}.{name}", param, item, commands[key])
                loaded.origins[(key, param.name)] = f"{path} ({key}:)"
        elif key in top_level or key in anywhere:
            for section_name, command in [("", group), *commands.items()]:
                option = settings_of(command).get(key)
                if option is None:
                    continue
                checked = _checked(path, key, option, value, command)
                target = (
                    loaded.default_map
                    if not section_name
                    else loaded.default_map.setdefault(section_name, {})
                )
                if (section_name, option.name) not in loaded.origins:  # a section wins
                    target[option.name] = checked
                    loaded.origins[(section_name, option.name)] = f"{path} (top level)"
        else:
            raise _unknown(path, key, key, top_keys, "at the top level (sections and settings)")
    return loaded


def _unknown(
    path: str, where: str, key: str, accepted, scope: str, elsewhere: str = ""
) -> ConfigError:
    close = difflib.get_close_matches(key, list(accepted), n=1)
    hint = f"; did you mean '{close[0]}'?" if close else "."
    return ConfigError(
        f"configuration file '{path}': unknown key '{where}'{elsewhere}{hint} The keys accepted {scope} "
        f"are: {', '.join(sorted(accepted))}. Nothing was run."
    )


def _checked(path: str, where: str, param: Any, value: Any, command: click.Command) -> Any:
    """The file's value for `param` as click takes it from a default map, once it converts."""
    problem = _type_problem(param, value)
    if problem is None:
        if param.multiple:
            value = _as_list(param, value)
        try:
            param.type_cast_value(click.Context(command), value)
        except click.BadParameter as exc:
            problem = exc.message
    if problem is not None:
        raise ConfigError(
            f"configuration file '{path}', key '{where}': {value!r} is not a valid value for "
            f"{_option_text(param)}: {problem.rstrip('.')}. Nothing was run."
        )
    return value


def _type_problem(param: Any, value: Any) -> str | None:
    """What is wrong with the value's YAML type (not its content), if anything."""
    flag = param.is_flag and not param.count
    if param.multiple:
        items = list(value.items()) if isinstance(value, dict) else _listed(value)
        if any(isinstance(item, (list, dict)) for item in items):
            return "it takes a list of plain values"
        return None
    if flag:
        return None if isinstance(value, bool) else "it is a switch: true or false"
    if isinstance(value, (list, dict)):
        return "it takes one value, not a list or a mapping"
    if isinstance(value, bool):
        return "it takes a value, not true or false"
    if isinstance(param.type, click.types.IntParamType) and isinstance(value, float):
        return "it takes a whole number"
    return None


def _listed(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def _as_list(param: Any, value: Any) -> list:
    """A repeatable option's values; a mapping gives NAME=VALUE items (`param: {n: 3}`)."""
    if isinstance(value, dict):
        return [f"{name}={item}" for name, item in value.items()]
    return [str(item) if not isinstance(item, str) else item for item in _listed(value)]


def _option_text(param: Any) -> str:
    return "/".join(param.opts)


def check_environment(group: click.Group, environ: Mapping[str, str] | None = None) -> None:
    """Every MAPREDUCE_<SETTING> variable that is set must convert for each option it sets."""
    environ = os.environ if environ is None else environ
    for key in sorted(COMMAND_LINE_ONLY):
        if env_name(key) in environ:
            raise ConfigError(
                f"environment variable {env_name(key)} is set, but --{key.replace('_', '-')} "
                f"turns the coordinator's keys off and is taken from the command line only. "
                f"Unset it and give --{key.replace('_', '-')} where it is meant. Nothing was run."
            )
    for command in [group, *sections(group).values()]:
        for param in settings_of(command).values():
            name = param.envvar
            if not isinstance(name, str) or name not in environ:
                continue
            text = environ[name]
            try:
                if getattr(param, "is_flag", False) and not getattr(param, "count", False):
                    click.BOOL.convert(text, param, None)
                elif text:
                    raw = param.type.split_envvar_value(text) if param.multiple else text
                    param.type_cast_value(click.Context(command), raw)
            except click.BadParameter as exc:
                raise ConfigError(
                    f"environment variable {name}={text!r} is not a valid value for "
                    f"{_option_text(param)} of `{command.name}`: {exc.message.rstrip('.')}. "
                    f"Unset it or correct it. Nothing was run."
                ) from None


@dataclass
class Setting:
    section: str  # "mapreduce" for the group's own options, else the command
    key: str
    value: Any
    source: str  # "command line", "environment", "file" or "default"
    where: str  # the variable's name, the file (and its section), or ""
    kind: str = ""  # the option's type's name ("size": bytes, shown with their unit)

    def to_json(self) -> dict:
        value = list(self.value) if isinstance(self.value, tuple) else self.value
        return {"value": value, "source": self.source, "where": self.where}


def effective(root: click.Context, loaded: Loaded, command_line: list) -> list[Setting]:
    """Every setting's value for each command as it would run now (with no options given to
    it), and where it came from; the group's own options as given to this invocation. With a
    `command_line` (COMMAND ARGS...), that command's only, as it would run with those ARGS."""
    group = root.command
    assert isinstance(group, click.Group)
    commands = sections(group)
    if command_line:
        name = command_line[0]
        if name not in commands:
            close = difflib.get_close_matches(name, list(commands), n=1)
            raise ConfigError(
                f"'{name}' is not a command with settings"
                + (f"; did you mean '{close[0]}'?" if close else ".")
                + f" The commands are: {', '.join(sorted(commands))}."
            )
        commands = {name: commands[name]}
    found = _settings_in(root, "", "mapreduce", group, loaded)
    for name, command in commands.items():
        args = command_line[1:] if command_line else []
        context = command.make_context(name, args, parent=root, resilient_parsing=True)
        found += _settings_in(context, name, name, command, loaded)
    return found


def _settings_in(
    ctx: click.Context, section: str, label: str, command: click.Command, loaded: Loaded
) -> list[Setting]:
    found = []
    for key, param in settings_of(command).items():
        if not param.expose_value or param.name is None:
            continue
        source = ctx.get_parameter_source(param.name)
        if source is click.core.ParameterSource.COMMANDLINE:
            origin = ("command line", "")
        elif source is click.core.ParameterSource.ENVIRONMENT:
            origin = ("environment", str(param.envvar))
        elif source is click.core.ParameterSource.DEFAULT_MAP:
            origin = ("file", loaded.origins.get((section, param.name), str(loaded.path)))
        else:
            origin = ("default", "")
        value = ctx.params.get(param.name)
        if is_secret(key) and value:  # shown to say it is set, never what it is
            value = HIDDEN
        found.append(Setting(label, key, value, *origin, param.type.name))
    return found


HIDDEN = "(set, not shown)"


def is_secret(key: str) -> bool:
    """A setting whose value `config show` must not print (a token or password)."""
    return key.endswith(("token", "secret", "password"))


def show_text(settings: list[Setting], loaded: Loaded) -> str:
    lines = [f"configuration file: {loaded.path or 'none'}"]
    section = None
    for setting in settings:
        if setting.section != section:
            section = setting.section
            lines.append(f"[{section}]")
        value = list(setting.value) if isinstance(setting.value, tuple) else setting.value
        source = f"{setting.source} {setting.where}".strip()
        shown = json.dumps(value, default=str)
        if setting.kind == "size" and isinstance(value, int):
            shown += f" ({size_text(value)})"
        lines.append(f"  {setting.key} = {shown}  ({source})")
    return "\n".join(lines)


def show_json(settings: list[Setting], loaded: Loaded) -> str:
    out: dict = {"file": loaded.path, "sections": {}}
    for setting in settings:
        out["sections"].setdefault(setting.section, {})[setting.key] = setting.to_json()
    return json.dumps(out, indent=2, default=str)
