"""Write or check ``components/package/schema.json``, the schema Pulumi's analyzer infers for the package.

``python -m components.package.gen_schema --write`` after changing a component's Args or outputs;
``--check`` exits 1 when the committed file is stale (what the test asserts).
"""

import argparse
import json
import sys
from pathlib import Path

from components.package import schema

SCHEMA_PATH = Path(__file__).with_name("schema.json")


def render() -> str:
    """The schema as committed: sorted keys, two-space indent, a final newline."""
    return json.dumps(schema(), indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    """``--write`` the schema, or ``--check`` it (exit 1 and one line when stale)."""
    parser = argparse.ArgumentParser(prog="python -m components.package.gen_schema")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="write components/package/schema.json")
    mode.add_argument("--check", action="store_true", help="exit 1 if the committed schema is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.write:
        SCHEMA_PATH.write_text(text, encoding="utf-8")
        return 0
    if not SCHEMA_PATH.is_file() or SCHEMA_PATH.read_text(encoding="utf-8") != text:
        sys.stderr.write(f"{SCHEMA_PATH} is stale; run: python -m components.package.gen_schema --write\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
