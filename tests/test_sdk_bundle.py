"""The embed SDK ships as committed files built from its modules (scripts/bundle_sdk.py):
they may never drift from the modules they are built from."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _bundler() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bundle_sdk", ROOT / "scripts" / "bundle_sdk.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("bundle_sdk", module)
    spec.loader.exec_module(module)
    return module


bundle_sdk = _bundler()


def test_committed_embed_js_and_mjs_are_what_the_modules_bundle_to() -> None:
    assert bundle_sdk.stale() == [], "run scripts/bundle_sdk.py and commit the result"


def test_the_classic_script_defines_the_global_and_the_module_exports_it() -> None:
    files = bundle_sdk.bundle()
    assert "global.LiveAudioRoom = sdk_index.LiveAudioRoom;" in files["embed.js"]
    assert "export const LiveAudioRoom = sdk_index.LiveAudioRoom;" in files["embed.mjs"]
    assert "export default sdk_index.default;" in files["embed.mjs"]
    # Every module of sdk/ is in, each once, the modules it imports before it.
    order = [m.name for m in bundle_sdk.ordered_modules()]
    assert sorted(order) == sorted(p.name for p in (ROOT / "static/liveaudio/sdk").glob("*.js"))
    assert order.index("util.js") < order.index("state.js") < order.index("session.js")
    assert order[-1] == "index.js"


def _sdk(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return tmp_path


def test_each_module_keeps_its_private_names_and_imports_become_bindings(tmp_path) -> None:
    sdk = _sdk(
        tmp_path,
        {
            "index.js": 'import { twice as double } from "./math.js";\n'
            "const helper = 1;\nexport const LiveAudioRoom = { n: double(helper) };\n"
            "export default LiveAudioRoom;\n",
            "math.js": "const helper = 2;\nexport function twice(n) { return n * helper; }\n",
        },
    )
    script = bundle_sdk.bundle(sdk)["embed.js"]
    assert "const { twice: double } = sdk_math;" in script
    assert "return { twice };" in script
    assert "return { LiveAudioRoom, default: LiveAudioRoom };" in script
    assert script.index("const sdk_math =") < script.index("const sdk_index =")
    code = script.removeprefix(bundle_sdk.SCRIPT_HEADER)
    assert "export " not in code and "import " not in code


@pytest.mark.parametrize(
    ("source", "refused"),
    [
        ("export let counter = 0;\n", "export let counter"),
        ('import * as all from "./math.js";\n', "import * as all"),
        ('export { LiveAudioRoom } from "./math.js";\n', "export { LiveAudioRoom }"),
    ],
)
def test_the_bundler_refuses_what_it_cannot_rewrite(tmp_path, source: str, refused: str) -> None:
    sdk = _sdk(tmp_path, {"index.js": source, "math.js": "export const x = 1;\n"})
    with pytest.raises(bundle_sdk.BundleError, match="index.js:1: cannot bundle") as error:
        bundle_sdk.bundle(sdk)
    assert refused in str(error.value)


def test_an_import_cycle_is_refused(tmp_path) -> None:
    sdk = _sdk(
        tmp_path,
        {
            "index.js": 'import { a } from "./a.js";\nexport const LiveAudioRoom = a;\n',
            "a.js": 'import { LiveAudioRoom } from "./index.js";\nexport const a = 1;\n',
        },
    )
    with pytest.raises(bundle_sdk.BundleError, match="import cycle: index.js -> a.js -> index.js"):
        bundle_sdk.bundle(sdk)
