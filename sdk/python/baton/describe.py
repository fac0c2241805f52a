"""`python -m baton.describe FILE [--output PATH]`: the pipelines a Python file defines, as JSON.

Baton runs this in a separate process (never inside the server) whenever it reads a `.py`
file in the pipelines folder. The answer:

    {"sdk": "0.1.0", "protocol": 1,
     "pipelines": [{"name": ..., "function": ..., "line": N,
                    "spec": "<the pipeline as pretty-printed JSON>", "lines": [source line per spec line]}],
     "issues": [{"severity": "error"|"warning", "line": N, "column": N, "message": ..., "fix": ...}]}

Baton parses `spec` with the parser YAML files go through (JSON is YAML), so every rule of a
YAML pipeline applies, and maps the line of each problem back through `lines` to the line of
the Python file it came from. Problems that stop a pipeline from being built (syntax errors,
exceptions while importing or calling the pipeline function) are `issues`, located by the
traceback. The exit status is 0 whenever the answer was written.
"""

import argparse
import importlib.util
import json
import os
import re
import sys
import traceback

from . import __version__, _pipeline, _trace
from ._errors import PipelineDefinitionError

PROTOCOL = 1
_SDK_DIR = os.path.dirname(os.path.abspath(__file__))


def module_name(path):
    """The name a pipeline file is imported under, here and in its task processes (so a task
    function's `module:qualname` resolves the same way in both)."""
    stem = os.path.splitext(os.path.basename(path))[0]
    return "_baton_pipeline_" + re.sub(r"[^A-Za-z0-9_]", "_", stem)


def load_file(path):
    """Imports the file as a module, its folder first on sys.path like a script's."""
    path = os.path.abspath(path)
    sys.dont_write_bytecode = True  # no __pycache__ in the pipelines folder: Baton watches it
    folder = os.path.dirname(path)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    name = module_name(path)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------------------------------------
# Pretty JSON with a source line per output line
# ---------------------------------------------------------------------------------------------

# Characters YAML would not read back verbatim inside a double-quoted scalar (it folds line
# separators and rejects non-printable ones), escaped the JSON way.
_UNSAFE = re.compile("[\u007f-\u009f\u2028\u2029\ud800-\udfff\ufeff\ufffe\uffff]")


def _scalar(value):
    text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    return _UNSAFE.sub(lambda match: "\\u%04x" % ord(match.group()), text)


def emit(spec, locations):
    """(text, lines): `spec` as indented JSON, and for each line of it the source line of the
    deepest key path above it that has a location."""
    out = []
    lines = []

    def line_for(path):
        for length in range(len(path), -1, -1):
            if path[:length] in locations:
                return locations[path[:length]]
        return 0

    def write(text, path):
        out.append(text)
        lines.append(line_for(path))

    def value_text(value, path, indent, prefix, suffix):
        pad = "  " * indent
        if isinstance(value, dict) and value:
            write(f"{pad}{prefix}{{", path)
            items = list(value.items())
            for index, (key, item) in enumerate(items):
                comma = "," if index < len(items) - 1 else ""
                value_text(item, path + (key,), indent + 1, f"{_scalar(key)}: ", comma)
            write(f"{pad}}}{suffix}", path)
        elif isinstance(value, list) and value and any(isinstance(item, (dict, list)) for item in value):
            write(f"{pad}{prefix}[", path)
            for index, item in enumerate(value):
                comma = "," if index < len(value) - 1 else ""
                value_text(item, path + (index,), indent + 1, "", comma)
            write(f"{pad}]{suffix}", path)
        elif isinstance(value, list):
            write(f"{pad}{prefix}[" + ", ".join(_scalar(item) for item in value) + f"]{suffix}", path)
        elif isinstance(value, dict):
            write(f"{pad}{prefix}{{}}{suffix}", path)
        else:
            write(f"{pad}{prefix}{_scalar(value)}{suffix}", path)

    value_text(spec, (), 0, "", "")
    return "\n".join(out) + "\n", lines


# ---------------------------------------------------------------------------------------------
# Errors as issues
# ---------------------------------------------------------------------------------------------

def _display(path):
    try:
        return os.path.relpath(path)
    except ValueError:
        return path


def _issue(message, line, column=1, fix=None, severity="error"):
    issue = {"severity": severity, "line": line or 0, "column": column if line else 0, "message": message}
    if fix:
        issue["fix"] = fix
    return issue


def issue_for_exception(error, path, fallback_line=0):
    """An exception while reading the file, located at the line of the file it passed through
    last, naming the innermost place outside the file when it was raised elsewhere."""
    path = os.path.abspath(path)
    if isinstance(error, PipelineDefinitionError):
        line = error.lineno if error.filename and os.path.abspath(error.filename) == path else None
        message = error.message
        if error.filename and os.path.abspath(error.filename) != path and error.lineno:
            message += f" (at {_display(error.filename)}:{error.lineno})"
        if line is None:
            line = _line_in_file(error.__traceback__, path) or fallback_line
        return _issue(message, line, fix=error.fix)
    frames = [frame for frame in traceback.extract_tb(error.__traceback__)
              if not os.path.abspath(frame.filename).startswith(_SDK_DIR + os.sep)
              and "importlib._bootstrap" not in frame.filename]
    line = None
    column = 1
    text = f"{type(error).__name__}: {error}"
    if isinstance(error, SyntaxError):
        text = f"{type(error).__name__}: {error.msg}"
        if error.filename and os.path.abspath(error.filename) == path:
            line, column = error.lineno, error.offset or 1
        elif error.filename:
            text += f" (at {_display(error.filename)}:{error.lineno})"
        if error.text and error.text.strip():
            text += f": {error.text.strip()}"
    in_file = [frame for frame in frames if os.path.abspath(frame.filename) == path]
    if line is None and in_file:
        line = in_file[-1].lineno
    if frames and os.path.abspath(frames[-1].filename) != path and not isinstance(error, SyntaxError):
        innermost = frames[-1]
        text += f" (raised at {_display(innermost.filename)}:{innermost.lineno} in {innermost.name})"
    return _issue(text, line or fallback_line, column)


def _line_in_file(tb, path):
    line = None
    for frame in traceback.extract_tb(tb):
        if os.path.abspath(frame.filename) == path:
            line = frame.lineno
    return line


# ---------------------------------------------------------------------------------------------

def describe(path):
    """The answer document for one file."""
    path = os.path.abspath(path)
    answer = {"sdk": __version__, "protocol": PROTOCOL, "pipelines": [], "issues": []}
    _trace.set_pipeline_file(path)
    already = len(_pipeline._defined)
    try:
        module = load_file(path)
    except BaseException as error:  # SystemExit and KeyboardInterrupt at import are the file's too
        if isinstance(error, KeyboardInterrupt):
            raise
        answer["issues"].append(issue_for_exception(error, path))
        return answer
    pipelines = [pipeline for pipeline in _pipeline._defined[already:] if pipeline.fn.__module__ == module.__name__]
    if not pipelines:
        answer["issues"].append(_issue(
            "the file imports baton but defines no pipeline", 1, severity="warning",
            fix="decorate a function with @dag or @flow, or move helper modules out of the pipelines folder"))
        return answer
    stem = os.path.splitext(os.path.basename(path))[0]
    for pipeline in pipelines:
        name = pipeline.options.get("name") or (stem if len(pipelines) == 1 else pipeline.fn.__name__)
        _, line = pipeline.location()
        try:
            spec, locations = _pipeline.build_spec(pipeline, name, path)
            text, lines = emit(spec, locations)
        except Exception as error:
            answer["issues"].append(issue_for_exception(error, path, fallback_line=line))
            continue
        answer["pipelines"].append(
            {"name": name, "function": pipeline.fn.__name__, "line": line, "spec": text, "lines": lines})
    return answer


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m baton.describe",
                                     description="Print the Baton pipelines a Python file defines, as JSON.")
    parser.add_argument("file")
    parser.add_argument("--output", help="write the answer here instead of stdout")
    arguments = parser.parse_args(argv)
    if arguments.output:
        # Baton stops a describe that runs too long with its whole process group, so whatever
        # the file's code started goes too.
        try:
            os.setpgrp()
        except OSError:
            pass
    if not os.path.isfile(arguments.file):
        print(f"baton.describe: no such file: {arguments.file}", file=sys.stderr)
        return 2
    answer = describe(arguments.file)
    text = json.dumps(answer, indent=1, ensure_ascii=False)
    if arguments.output:
        with open(arguments.output, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
    else:
        sys.stdout.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
