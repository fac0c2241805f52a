"""Baton's Python SDK for the example scripts: `from baton_sdk import baton`.

The SDK is imported as installed (`pip install ./sdk/python`); when it is not, the SDK of the
Baton checkout that runs the script is used (found above this examples folder, or above the
`baton` binary named by BATON_CLI), so the examples need nothing beyond python3.
"""

import os
import sys
from pathlib import Path


def _import_sdk():
    try:
        import baton  # noqa: F401
        return baton
    except ImportError:
        pass
    candidates = list(Path(__file__).resolve().parents)
    cli = os.environ.get("BATON_CLI")
    if cli:
        candidates += list(Path(cli).resolve().parents)
    for folder in candidates:
        sdk = folder / "sdk" / "python"
        if (sdk / "baton" / "__init__.py").is_file():
            sys.path.insert(0, str(sdk))
            import baton  # noqa: F811
            return baton
    raise ImportError("the Baton Python SDK is not installed: pip install ./sdk/python")


baton = _import_sdk()
